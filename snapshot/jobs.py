"""A job's life, step by step, without Beam: read, plan per input video, capture in tasks.

Jobs on the same input are planned together: the video is probed once, and the shots of all
of them are walked in time order by tasks that open the file once and share every decoded
frame. `snapshot.assemble` then makes each job's result. The pipeline's steps are thin
wrappers around these functions; `run` chains them in one process.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from snapshot import errors, images, isolation, media, naming, plan, spec, tiles
from snapshot.errors import SnapshotError
from snapshot.limits import Limits
from snapshot.media import Probe, Shot
from snapshot.notify import Targets
from snapshot.results import SnapshotImage
from snapshot.spec import Echo, ObjectRef, Request
from snapshot.storage import Buckets
from snapshot.tiles import SheetLayout

log = logging.getLogger(__name__)

MAX_SHOTS_PER_TASK = 16  # a task ends at the first keyframe boundary past this many shots


@dataclass(frozen=True)
class ManifestLine:
    source: str   # the manifest file's name
    number: int   # 1-based line number
    text: str

    @property
    def job_id(self) -> str:
        """Deterministic: the same line at the same place gets the same id on every run."""
        return hashlib.md5(f"{self.source}\n{self.number}\n{self.text}".encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    created: str
    echo: Echo
    request: Request | None = None
    error: SnapshotError | None = None


@dataclass(frozen=True)
class Planned:
    """What finishing a job needs to know of its plan."""
    duration_ms: float
    shots: int
    layout: SheetLayout | None


@dataclass(frozen=True)
class Part:
    """A job's share of a capture task: where its images go."""
    job_id: str
    request: Request
    layout: SheetLayout | None


@dataclass(frozen=True)
class CaptureTask:
    """Shots on one input, of one or several jobs, captured opening the video once."""
    input: ObjectRef
    probe: Probe
    shots: tuple[Shot, ...]   # in time order; each shot's owner is its job's id
    parts: tuple[Part, ...]

    @property
    def is_async(self) -> bool:
        return any(part.request.config.is_async for part in self.parts)


@dataclass(frozen=True)
class Outcome:
    """A piece of a job's result: its plan (seq 0), or one shot's image and sprite cell,
    or the error that stopped either; with the input bytes its step read for the job."""
    seq: int
    planned: Planned | None = None
    image: SnapshotImage | None = None
    cell: bytes | None = None
    error: SnapshotError | None = None
    bytes_read: int = 0


def read_job(line: ManifestLine, created: str, targets: Targets | None = None) -> Job:
    """Parse a manifest line; with `targets`, its PipelineId must be a known one."""
    echo = spec.decode_echo(line.text)
    source = f"{line.source}:{line.number}"
    try:
        request = spec.parse_request(line.text)
        if targets is not None:
            targets.check(request.pipeline_id)
        return Job(line.job_id, source, created, echo, request=request)
    except SnapshotError as error:
        return Job(line.job_id, source, created, echo, error=error)


def input_key(job: Job) -> str:
    """Jobs with the same key read the same object with the same credentials."""
    source = job.request.input
    return json.dumps([source.bucket, source.name, source.role_arn])


def plan_input(jobs: list[Job], buckets: Buckets, limits: Limits = Limits()) \
        -> tuple[list[tuple[str, Outcome]], list[CaptureTask]]:
    """Plan the jobs on one input: probe it once, then each job's shots, sizes and sprites.

    Returns each job's plan outcome (seq 0: what finishing needs, or the error that stops
    the job) and the capture tasks of all the jobs together.
    """
    outcomes: dict[str, Outcome] = {}
    ready = []
    for job in jobs:
        try:
            _check_roles(job.request, buckets)
            ready.append(job)
        except SnapshotError as error:
            outcomes[job.id] = Outcome(0, error=error)
    reader = probe = None
    try:
        if ready:
            with buckets.open(ready[0].request.input) as reader:
                probe = media.probe(reader, limits)
                probe = media.exact_keyframes(reader, probe, _intra_targets(ready, probe, limits), limits)
    except Exception as error:  # noqa: BLE001 - one bad video must never stop the pipeline
        error = _coded(error, "planning")
        outcomes.update((job.id, Outcome(0, error=error)) for job in ready)
        ready = []
    shots, parts = [], []
    for job in ready:
        try:
            job_shots, layout = _plan_job(job, probe, limits)
        except Exception as error:  # noqa: BLE001 - one bad job must never stop the others
            outcomes[job.id] = Outcome(0, error=_coded(error, "planning"))
            continue
        outcomes[job.id] = Outcome(0, planned=Planned(probe.duration_ms, len(job_shots), layout))
        shots += job_shots
        parts.append(Part(job.id, job.request, layout))
    shares = _shares(reader.bytes_read if reader else 0, [job.id for job in jobs])
    planned = [(job.id, replace(outcomes[job.id], bytes_read=shares[job.id])) for job in jobs]
    return planned, _tasks(probe, shots, parts)


def _intra_targets(jobs: list[Job], probe: Probe, limits: Limits) -> list[int]:
    """The points of the intra jobs, whose nearest keyframes must be exact."""
    targets = []
    for job in jobs:
        config = job.request.config
        if config.frame_type == spec.INTRA:
            try:
                targets += [probe.pts(t) for t in plan.time_points(config, probe.duration_ms, limits.max_points)]
            except SnapshotError:
                pass  # the job fails when it is planned
    return targets


def _plan_job(job: Job, probe: Probe, limits: Limits) -> tuple[list[Shot], SheetLayout | None]:
    config = job.request.config
    size = plan.output_size(config, probe)
    layout = tiles.layout(config.tile, size, limits.max_sheet_pixels) if config.tile else None
    shots = plan.shots(config, probe, limits.max_points, owner=job.id)
    _check_output_pixels(config, size, layout, len(shots), limits)
    return shots, layout


def _tasks(probe: Probe | None, shots: list[Shot], parts: list[Part]) -> list[CaptureTask]:
    """Split shots into tasks contiguous in time, each ending at a keyframe boundary once it
    holds MAX_SHOTS_PER_TASK shots, so that no two tasks decode the same GOP."""
    if not shots:
        return []
    groups, current = [], []
    for shot in sorted(shots, key=lambda s: (s.target_pts, s.owner, s.seq)):
        gop = probe.keyframe_at_or_before(shot.target_pts)
        if len(current) >= MAX_SHOTS_PER_TASK and gop != probe.keyframe_at_or_before(current[-1].target_pts):
            groups.append(current)
            current = []
        current.append(shot)
    groups.append(current)
    by_job = {part.job_id: part for part in parts}
    source = parts[0].request.input
    return [CaptureTask(source, probe, tuple(group), tuple(by_job[o] for o in sorted({s.owner for s in group})))
            for group in groups]


def run_task(task: CaptureTask, buckets: Buckets, limits: Limits = Limits()) -> list[tuple[str, Outcome]]:
    """Capture a task's shots: write the single images, keep the sprite cells small.

    A failure stops the task: each job with shots left in it gets one failed outcome.
    """
    parts = {part.job_id: part for part in task.parts}
    outcomes: list[tuple[str, Outcome]] = []
    reader = None
    try:
        with buckets.open(task.input) as reader:
            for captured in media.capture(reader, task.shots, task.probe, limits):
                outcomes.append((captured.shot.owner, _keep(parts[captured.shot.owner], task.probe, captured,
                                                            buckets)))
    except Exception as error:  # noqa: BLE001 - one bad video must never stop the pipeline
        outcomes += _unfinished(task, outcomes, _coded(error, "capture"))
    shares = _shares(reader.bytes_read if reader else 0, list(parts))
    first = {}
    for index, (job_id, _) in enumerate(outcomes):
        first.setdefault(job_id, index)
    for job_id, index in first.items():
        outcomes[index] = (job_id, replace(outcomes[index][1], bytes_read=shares[job_id]))
    return outcomes


def _keep(part: Part, probe: Probe, captured: media.Captured, buckets: Buckets) -> Outcome:
    """Write one captured picture as a single image and/or keep its sprite cell."""
    request, shot = part.request, captured.shot
    config = request.config
    name = url = ""
    if config.writes_images:
        name = naming.expand(config.output.name, request.input.name, shot.seq, shot.requested_ms)
        url = buckets.write(config.output, name, images.encode_jpeg(captured.image, config.quality))
    image = SnapshotImage(shot.seq, name, url, shot.requested_ms, round(probe.ms(captured.frame_pts)),
                          *captured.image.size)
    cell = None
    if part.layout and part.layout.cell_index(shot.seq) is not None:
        cell = images.cell_jpeg(captured.image, (part.layout.cell_width, part.layout.cell_height))
    return Outcome(shot.seq, image=image, cell=cell)


def _unfinished(task: CaptureTask, outcomes: list[tuple[str, Outcome]],
                error: SnapshotError) -> list[tuple[str, Outcome]]:
    """One failed outcome for each job with shots of the task not captured."""
    done = {(job_id, outcome.seq) for job_id, outcome in outcomes}
    failed = {}
    for shot in task.shots:
        if (shot.owner, shot.seq) not in done:
            failed.setdefault(shot.owner, (shot.owner, Outcome(shot.seq, error=error)))
    return list(failed.values())


def plan_input_guarded(jobs: list[Job], buckets: Buckets, limits: Limits) \
        -> tuple[list[tuple[str, Outcome]], list[CaptureTask]]:
    """plan_input in a decoding process that is killed past the jobs' time limit."""
    is_async = any(job.request.config.is_async for job in jobs)
    try:
        return _isolated(plan_input, (jobs, buckets, limits), limits, is_async)
    except SnapshotError as error:
        return [(job.id, Outcome(0, error=error)) for job in jobs], []


def run_task_guarded(task: CaptureTask, buckets: Buckets, limits: Limits) -> list[tuple[str, Outcome]]:
    """run_task in a decoding process that is killed past the jobs' time limit."""
    try:
        return _isolated(run_task, (task, buckets, limits), limits, task.is_async)
    except SnapshotError as error:
        return _unfinished(task, [], error)


def _isolated(function, args: tuple, limits: Limits, is_async: bool):
    if not limits.isolate:
        return function(*args)
    return isolation.run(function, args, limits.timeout_s(is_async), limits.decoder_memory_mb)


def _check_output_pixels(config: spec.SnapshotConfig, size: tuple[int, int], layout: SheetLayout | None,
                         shots: int, limits: Limits) -> None:
    """The pixels a job writes, single images and sheets together, must stay under the cap."""
    total = shots * size[0] * size[1] if config.writes_images else 0
    if layout is not None:
        cells = sum(layout.cell_index(seq) is not None for seq in range(1, shots + 1))
        total += sum(w * h for w, h in (layout.sheet_size(n, cells) for n in range(1, layout.sheet_count(cells) + 1)))
    if total > limits.max_output_pixels:
        raise SnapshotError(errors.OUT_OF_RANGE, f"the job would write {total} pixels, over the cap of "
                                                 f"{limits.max_output_pixels}")


def _check_roles(request: Request, buckets: Buckets) -> None:
    """Every RoleArn must be one the deployment knows, before any I/O."""
    config = request.config
    refs = {"Input": request.input, "SnapshotConfig.OutputFile": config.output,
            "SnapshotConfig.TileOutputFile": config.tile_output}
    for field_name, ref in refs.items():
        if ref is not None:
            buckets.check_role(ref.role_arn, f"{field_name}.RoleArn")


def _coded(error: Exception, step: str) -> SnapshotError:
    if isinstance(error, SnapshotError):
        return error
    log.error("%s failed", step, exc_info=error)
    return internal_error()


def internal_error() -> SnapshotError:
    return SnapshotError(errors.INTERNAL_ERROR, "an internal error occurred; see the worker logs")


def _shares(total: int, job_ids: Iterable[str]) -> dict[str, int]:
    """`total` bytes split evenly over the jobs that shared them (the first gets the rest)."""
    job_ids = list(dict.fromkeys(job_ids))
    if not job_ids:
        return {}
    share, rest = divmod(total, len(job_ids))
    return {job_id: share + (rest if n == 0 else 0) for n, job_id in enumerate(job_ids)}
