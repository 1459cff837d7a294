"""A job's one result: its outcomes checked, its sprite sheets and WebVTT track written."""

from __future__ import annotations

import logging
import posixpath
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import replace

from snapshot import errors, images, isolation, naming, results, vtt
from snapshot.errors import SnapshotError
from snapshot.guarded import decoders, plan_input_guarded, run_task_guarded
from snapshot.jobs import Job
from snapshot.limits import Limits
from snapshot.results import JobResult, SnapshotImage
from snapshot.storage import Buckets, Storage
from snapshot.tasks import Outcome, Planned, internal_error
from snapshot.tiles import SheetLayout

log = logging.getLogger(__name__)


def finish_guarded(
    job: Job, outcomes: Iterable[Outcome], buckets: Buckets, limits: Limits, pool: isolation.Pool | None = None
) -> JobResult:
    """`finish`; for a job with sprite sheets, in a decoding process of `pool` (of its own
    without one), so that the process's memory cap bounds the sheets and the job's time limit
    their composing."""
    outcomes = list(outcomes)
    if job.request is None or job.request.config.tile is None or not limits.isolate:
        return finish(job, outcomes, buckets)
    try:
        with decoders(pool, limits) as using:
            return using.run(finish, (job, outcomes, buckets), limits.timeout_s(job.parsed.config.is_async))
    except SnapshotError as error:
        return replace(
            failed(job, error, outcomes, now=True),
            snapshots=tuple(image for _, image in _shots(outcomes)),
            bytes_read=sum(o.bytes_read for o in outcomes),
        )


def finish(job: Job, outcomes: Iterable[Outcome], buckets: Buckets) -> JobResult:
    """The job's one result. Sprite sheets and the VTT track are written here, after every
    capture, one sheet at a time."""
    if job.error is not None:
        return failed(job, job.error)
    outcomes = sorted(outcomes, key=lambda o: o.seq)
    shots = _shots(outcomes)
    sheets: list[tuple[str, str]] = []
    vtt_url = None
    writes = False  # sheets or a track, written here: the job's last step
    try:
        planned = _check_complete(job, outcomes, shots)
        writes = bool(planned.layout) or job.parsed.config.vtt
        with buckets.connect() as storage:
            if planned.layout:
                sheets = _write_sheets(job, planned.layout, shots, storage)
            if job.parsed.config.vtt:
                vtt_url = _write_vtt(job, planned, shots, [name for name, _ in sheets], storage)
        began, ended = _times(job, outcomes, now=writes)
        result = JobResult(
            job.id, job.source, results.State.SUCCESS, began, ended, warnings=_warnings(job, outcomes), **_echo(job)
        )
    except SnapshotError as error:
        result = failed(job, error, outcomes, now=writes)
    except Exception:  # one bad job must never stop the pipeline
        log.exception("finishing job %s failed", job.id)
        result = failed(job, internal_error(), outcomes, now=writes)
    return replace(
        result,
        snapshots=tuple(image for _, image in shots),
        tiles=tuple(url for _, url in sheets),
        vtt=vtt_url,
        bytes_read=sum(o.bytes_read for o in outcomes),
    )


def _shots(outcomes: Iterable[Outcome]) -> list[tuple[Outcome, SnapshotImage]]:
    """The outcomes that are images, with their image, in snapshot order."""
    return sorted(((o, image) for o in outcomes if (image := o.image) is not None), key=lambda pair: pair[0].seq)


def _check_complete(job: Job, outcomes: list[Outcome], shots: list[tuple[Outcome, SnapshotImage]]) -> Planned:
    """The job's plan, once no step failed and every shot arrived; else raise."""
    error = next((o.error for o in outcomes if o.error is not None), None)
    if error is not None:
        raise error
    planned = next((o.planned for o in outcomes if o.planned is not None), None)
    if planned is None or len(shots) != planned.shots:
        log.error("job %s: %s shots arrived of %s planned", job.id, len(shots), planned and planned.shots)
        raise SnapshotError(errors.INTERNAL_ERROR, "a capture result was lost")
    return planned


def _write_sheets(
    job: Job, layout: SheetLayout, shots: list[tuple[Outcome, SnapshotImage]], storage: Storage
) -> list[tuple[str, str]]:
    """Compose and write each sheet; (object name, url) per sheet."""
    config, input_name = job.parsed.config, job.parsed.input.name
    tile, sheets_to = config.sheets
    cells = [(layout.cell_of(o.seq), cell) for o, _ in shots if (cell := o.cell) is not None]
    color = images.sheet_color(tile.color, job.id)
    written = []
    for sheet in range(1, layout.sheet_count(len(cells)) + 1):
        size = layout.sheet_size(sheet, len(cells))
        picture = images.compose_sheet(size, color, (((c.x, c.y), jpeg) for c, jpeg in cells if c.sheet == sheet))
        name = naming.expand(sheets_to.name, input_name, tile_count=sheet)
        encoded = images.encode(picture, images.format_of(name), config.quality)
        written.append((name, storage.write(sheets_to, name, encoded)))
    return written


def _write_vtt(
    job: Job,
    planned: Planned,
    shots: list[tuple[Outcome, SnapshotImage]],
    sheet_names: list[str],
    storage: Storage,
) -> str:
    """The WebVTT track beside what its cues point to: the first sheet, or the first image."""
    config = job.parsed.config
    points = []
    if config.vtt_sprite_fragments and planned.layout is not None:
        layout, where = planned.layout, config.sheets[1]
        name = naming.vtt_name(sheet_names[0])
        for o, image in shots:
            if o.cell is not None:
                cell = layout.cell_of(o.seq)
                target = _relative(sheet_names[cell.sheet - 1], name)
                points.append((image.time_ms, f"{target}#xywh={cell.x},{cell.y},{cell.width},{cell.height}"))
    else:
        where = config.output
        name = naming.vtt_name(shots[0][1].object)
        points = [(image.time_ms, _relative(image.object, name)) for _, image in shots]
    text = vtt.track(points, planned.duration_ms)
    return storage.write(where, name, text.encode("utf-8"))


def _relative(name: str, vtt_name: str) -> str:
    """The URL of object `name` relative to the track's: each path segment percent-encoded,
    so that a player resolving the cue finds the object whatever its name holds (#, %, ?)."""
    path = posixpath.relpath(name, posixpath.dirname(vtt_name) or ".")
    return "/".join(urllib.parse.quote(segment, safe="") for segment in path.split("/"))


def run(job: Job, buckets: Buckets, limits: Limits = Limits()) -> JobResult:
    """All of a job's steps, one after the other (decoding isolated as `limits` say)."""
    if job.error is not None:
        return failed(job, job.error)
    with decoders(None, limits) as pool:
        outcomes, tasks = plan_input_guarded([job], buckets, limits, pool)
        for task in tasks:
            outcomes += run_task_guarded(task, buckets, limits, pool)
        return finish_guarded(job, [outcome for _, outcome in outcomes], buckets, limits, pool)


def failed(job: Job, error: SnapshotError, outcomes: Iterable[Outcome] = (), now: bool = False) -> JobResult:
    """The failed result of a job, with the times and warnings of the `outcomes` it got."""
    outcomes = list(outcomes)
    began, ended = _times(job, outcomes, now)
    return JobResult(
        job.id,
        job.source,
        results.State.FAIL,
        began,
        ended,
        code=error.code,
        message=error.message,
        warnings=_warnings(job, outcomes),
        **_echo(job),
    )


def _times(job: Job, outcomes: list[Outcome], now: bool) -> tuple[str, str]:
    """CreationTime and FinishTime: when the job's work began (its first capture; its planning
    when nothing was captured; its parsing when it was not planned) and when it ended (its
    last step; now when `now`, after sheets or a track written here)."""
    captures = [o.started for o in outcomes if o.image is not None and o.started]
    began = min(captures or [o.started for o in outcomes if o.started], default=0.0)
    ended = time.time() if now else max((o.ended for o in outcomes if o.ended), default=0.0)
    created = results.utc(began) if began else job.created
    return created, results.utc(ended) if ended else created


def _warnings(job: Job, outcomes: list[Outcome]) -> tuple[str, ...]:
    """The job's warnings: those of its request, then those of its plan, then those of its
    shots in {Count} order."""
    planned = next((o.planned for o in outcomes if o.planned is not None), None)
    shots = tuple(o.warning for o in sorted(outcomes, key=lambda o: o.seq) if o.warning)
    return job.warnings + (planned.warnings if planned else ()) + shots


def _echo(job: Job) -> dict:
    echo = job.echo
    return {
        "input": echo.input,
        "snapshot_config": echo.config,
        "pipeline_id": echo.pipeline_id,
        "user_data": echo.user_data,
    }
