"""A job's life, step by step, without Beam: read, plan, capture in tasks, finish.

The pipeline's DoFns are thin wrappers around these functions; any other front end (a CLI,
a server) can chain them in-process.
"""
from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass, replace
from typing import Iterable

from snapshot import errors, images, isolation, media, naming, plan, results, spec, tiles, vtt
from snapshot.errors import SnapshotError
from snapshot.limits import Limits
from snapshot.media import Probe, Shot
from snapshot.notify import Targets
from snapshot.results import JobResult, SnapshotImage
from snapshot.spec import Echo, Request
from snapshot.storage import Buckets
from snapshot.tiles import SheetLayout

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
class Planned:
    """What finishing a job needs to know of its plan."""
    duration_ms: float
    shots: int
    layout: SheetLayout | None


@dataclass(frozen=True)
class CaptureTask:
    """Shots of one job that one worker captures, opening the video once."""
    job_id: str
    request: Request
    probe: Probe
    size: tuple[int, int]
    shots: tuple[Shot, ...]
    layout: SheetLayout | None = None


@dataclass(frozen=True)
class Outcome:
    """A piece of a job's result: its plan (seq 0), or one shot's image and sprite cell,
    or the error that stopped either; with the input bytes its step read."""
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


def plan_job(job: Job, buckets: Buckets, limits: Limits = Limits()) -> tuple[Outcome, list[CaptureTask]]:
    """Probe the input, lay out the sprites and split the shots into tasks contiguous in time.

    The plan's outcome (seq 0) carries what finishing needs, or the error that stops the job.
    """
    request = job.request
    config = request.config
    reader = None
    try:
        _check_roles(request, buckets)
        with buckets.open(request.input) as reader:
            probe = media.probe(reader, limits)
            if config.frame_type == spec.INTRA:
                points = plan.time_points(config, probe.duration_ms, limits.max_points)
                probe = media.exact_keyframes(reader, probe, [probe.pts(point) for point in points], limits)
        size = plan.output_size(config, probe)
        layout = tiles.layout(config.tile, size, limits.max_sheet_pixels) if config.tile else None
        shots = sorted(plan.shots(config, probe, limits.max_points), key=lambda s: s.target_pts)
        _check_output_pixels(config, size, layout, len(shots), limits)
    except Exception as error:  # noqa: BLE001 - one bad video must never stop the pipeline
        if not isinstance(error, SnapshotError):
            log.exception("planning failed for job %s", job.id)
            error = internal_error()
        return Outcome(0, error=error, bytes_read=reader.bytes_read if reader else 0), []
    tasks = [CaptureTask(job.id, request, probe, size, tuple(shots[i:i + MAX_SHOTS_PER_TASK]), layout)
             for i in range(0, len(shots), MAX_SHOTS_PER_TASK)]
    planned = Planned(probe.duration_ms, len(shots), layout)
    return Outcome(0, planned=planned, bytes_read=reader.bytes_read), tasks


def run_task(task: CaptureTask, buckets: Buckets, limits: Limits = Limits()) -> list[Outcome]:
    """Capture the task's shots: write the single images, keep the sprite cells small.

    A failure ends the task with one failed outcome; the first outcome carries the bytes read.
    """
    request, outcomes, reader = task.request, [], None
    config = request.config
    try:
        with buckets.open(request.input) as reader:
            keyframes_only = config.frame_type == spec.INTRA
            for captured in media.capture(reader, task.shots, task.probe, task.size, keyframes_only, limits):
                outcomes.append(_keep(task, captured, buckets))
    except SnapshotError as error:
        outcomes.append(Outcome(_next_seq(task, outcomes), error=error))
    except Exception:  # noqa: BLE001 - one bad video must never stop the pipeline
        log.exception("capture failed for job %s", task.job_id)
        outcomes.append(Outcome(_next_seq(task, outcomes), error=internal_error()))
    if reader is not None:
        outcomes[0] = replace(outcomes[0], bytes_read=reader.bytes_read)
    return outcomes


def _keep(task: CaptureTask, captured: media.Captured, buckets: Buckets) -> Outcome:
    """Write one captured picture as a single image and/or keep its sprite cell."""
    request, shot = task.request, captured.shot
    config = request.config
    name = url = ""
    if config.writes_images:
        name = naming.expand(config.output.name, request.input.name, shot.seq, shot.requested_ms)
        url = buckets.write(config.output, name, images.encode_jpeg(captured.image))
    image = SnapshotImage(shot.seq, name, url, shot.requested_ms, round(task.probe.ms(captured.frame_pts)),
                          *captured.image.size)
    cell = None
    if task.layout and task.layout.cell_index(shot.seq) is not None:
        cell = images.cell_jpeg(captured.image, (task.layout.cell_width, task.layout.cell_height))
    return Outcome(shot.seq, image=image, cell=cell)


def plan_guarded(job: Job, buckets: Buckets, limits: Limits) -> tuple[Outcome, list[CaptureTask]]:
    """plan_job in a decoding process that is killed past the job's time limit."""
    try:
        return _isolated(plan_job, (job, buckets, limits), limits, job.request.config.is_async)
    except SnapshotError as error:
        return Outcome(0, error=error), []


def run_task_guarded(task: CaptureTask, buckets: Buckets, limits: Limits) -> list[Outcome]:
    """run_task in a decoding process that is killed past the job's time limit."""
    try:
        return _isolated(run_task, (task, buckets, limits), limits, task.request.config.is_async)
    except SnapshotError as error:
        return [Outcome(task.shots[0].seq, error=error)]


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


def finish(job: Job, outcomes: Iterable[Outcome], buckets: Buckets) -> JobResult:
    """The job's one result. Sprite sheets and the VTT track are written here, after every
    capture, one sheet at a time."""
    if job.error is not None:
        return failed(job, job.error)
    outcomes = sorted(outcomes, key=lambda o: o.seq)
    shots = [o for o in outcomes if o.image is not None]
    sheets, vtt_url = [], None
    try:
        planned = _check_complete(job, outcomes, shots)
        if planned.layout:
            sheets = _write_sheets(job, planned.layout, shots, buckets)
        if job.request.config.vtt:
            vtt_url = _write_vtt(job, planned, shots, [name for name, _ in sheets], buckets)
        result = JobResult(job.id, job.source, results.SUCCESS, job.created, results.utc_now(), **_echo(job))
    except SnapshotError as error:
        result = failed(job, error)
    except Exception:  # noqa: BLE001 - one bad job must never stop the pipeline
        log.exception("finishing job %s failed", job.id)
        result = failed(job, internal_error())
    return replace(result, snapshots=tuple(o.image for o in shots), tiles=tuple(url for _, url in sheets),
                   vtt=vtt_url, bytes_read=sum(o.bytes_read for o in outcomes))


def run(job: Job, buckets: Buckets, limits: Limits = Limits()) -> JobResult:
    """All of a job's steps in this process, one after the other."""
    if job.error is not None:
        return failed(job, job.error)
    outcome, tasks = plan_job(job, buckets, limits)
    outcomes = [outcome]
    for task in tasks:
        outcomes += run_task(task, buckets, limits)
    return finish(job, outcomes, buckets)


def _check_complete(job: Job, outcomes: list[Outcome], shots: list[Outcome]) -> Planned:
    """The job's plan, once no step failed and every shot arrived; else raise."""
    error = next((o.error for o in outcomes if o.error is not None), None)
    if error is not None:
        raise error
    planned = next((o.planned for o in outcomes if o.planned is not None), None)
    if planned is None or len(shots) != planned.shots:
        log.error("job %s: %s shots arrived of %s planned", job.id, len(shots), planned and planned.shots)
        raise internal_error()
    return planned


def failed(job: Job, error: SnapshotError) -> JobResult:
    return JobResult(job.id, job.source, results.FAIL, job.created, results.utc_now(),
                     code=error.code, message=error.message, **_echo(job))


def _echo(job: Job) -> dict:
    echo = job.echo
    return {"input": echo.input, "snapshot_config": echo.config, "pipeline_id": echo.pipeline_id,
            "user_data": echo.user_data}


def internal_error() -> SnapshotError:
    return SnapshotError(errors.INTERNAL_ERROR, "an internal error occurred; see the worker logs")


def _write_sheets(job: Job, layout: SheetLayout, shots: list[Outcome],
                  buckets: Buckets) -> list[tuple[str, str]]:
    """Compose and write each sheet; (object name, url) per sheet."""
    config, input_name = job.request.config, job.request.input.name
    cells = [(layout.cell(layout.cell_index(o.seq)), o.cell) for o in shots if o.cell is not None]
    color = images.sheet_color(config.tile.color, job.id)
    written = []
    for sheet in range(1, layout.sheet_count(len(cells)) + 1):
        size = layout.sheet_size(sheet, len(cells))
        picture = images.compose_sheet(size, color, (((c.x, c.y), jpeg) for c, jpeg in cells if c.sheet == sheet))
        name = naming.expand(config.tile_output.name, input_name, tile_count=sheet)
        written.append((name, buckets.write(config.tile_output, name, images.encode_jpeg(picture))))
    return written


def _write_vtt(job: Job, planned: Planned, shots: list[Outcome], sheet_names: list[str],
               buckets: Buckets) -> str:
    """The WebVTT track beside what its cues point to: the first sheet, or the first image."""
    config = job.request.config
    if config.vtt_sprite_fragments:
        layout, where = planned.layout, config.tile_output
        name = _vtt_name(sheet_names[0])
        points = []
        for o in shots:
            if o.cell is not None:
                cell = layout.cell(layout.cell_index(o.seq))
                target = _relative(sheet_names[cell.sheet - 1], name)
                points.append((o.image.time_ms, f"{target}#xywh={cell.x},{cell.y},{cell.width},{cell.height}"))
    else:
        where = config.output
        name = _vtt_name(shots[0].image.object)
        points = [(o.image.time_ms, _relative(o.image.object, name)) for o in shots]
    text = vtt.track(points, planned.duration_ms)
    return buckets.write(where, name, text.encode("utf-8"))


def _vtt_name(first_output: str) -> str:
    return posixpath.splitext(first_output)[0] + ".vtt"


def _relative(name: str, vtt_name: str) -> str:
    return posixpath.relpath(name, posixpath.dirname(vtt_name) or ".")


def _next_seq(task: CaptureTask, outcomes: list[Outcome]) -> int:
    done = {o.seq for o in outcomes}
    return next((s.seq for s in task.shots if s.seq not in done), task.shots[0].seq)
