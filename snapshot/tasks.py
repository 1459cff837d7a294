"""Planning and capture tasks, without Beam: the jobs on one input planned together.

The video is probed once, and the shots of all its jobs are walked in time order by tasks
that open the file once and share every decoded frame. The decoder (snapshot.media, PyAV) is
imported by the calls that decode, which run in the decoding processes: the steps that only
carry tasks and outcomes import none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from snapshot import errors, images, naming, plan, shots, spec, tiles
from snapshot.errors import SnapshotError
from snapshot.jobs import Job
from snapshot.limits import Limits
from snapshot.objects import CountingReader
from snapshot.results import SnapshotImage
from snapshot.spec import ObjectRef, Request
from snapshot.storage import Buckets, Storage
from snapshot.tiles import SheetLayout
from snapshot.video import BLACK_WINDOW_S, Probe, Shot

if TYPE_CHECKING:
    from snapshot.media import Captured

log = logging.getLogger(__name__)

# A task ends at the first keyframe boundary once it shows MAX_FRAMES_PER_TASK frames or its
# estimated work passes TASK_COST, and anywhere once it shows MAX_FRAMES_IN_A_GOP frames: a
# very long GOP is then decoded once per task, which beats one unbounded task. A cut inside a
# GOP makes the next task decode again from its keyframe, so cost alone never cuts there; and
# the shots of one frame (many jobs asking for the same time) are never split.
MAX_FRAMES_PER_TASK = 16
MAX_FRAMES_IN_A_GOP = 64
TASK_COST = 1e9  # estimated nanoseconds of work: about a second
DECODE_NS_PER_PIXEL = 2  # estimates for one core, from the capture benchmark
PICTURE_NS_PER_PIXEL = 8  # scaling, colour conversion and JPEG encoding of an output pixel
ASSUMED_FPS = 30  # to count the frames a walk of so many milliseconds decodes


@dataclass(frozen=True)
class Planned:
    """What finishing a job needs to know of its plan."""

    duration_ms: float
    shots: int
    layout: SheetLayout | None
    warnings: tuple[str, ...] = ()  # plan.warnings: past the end, Count below the points asked, ...


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
    input_version: str  # what planning read: capture must read the same content
    probe: Probe
    shots: tuple[Shot, ...]  # in time order; each shot's owner is its job's id
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Outcome:
    """A piece of a job's result: its plan (seq 0), or one shot's image and sprite cell,
    or the error that stopped either; with the input bytes its step read for the job, and when
    that step began and when this piece was done (seconds since the epoch; 0 when unknown)."""

    seq: int
    planned: Planned | None = None
    image: SnapshotImage | None = None
    cell: bytes | None = None
    error: SnapshotError | None = None
    bytes_read: int = 0
    warning: str = ""  # what capturing this shot noticed (FrameType best: no clear frame)
    started: float = 0.0
    ended: float = 0.0


def plan_input(
    jobs: list[Job], buckets: Buckets, limits: Limits = Limits()
) -> tuple[list[tuple[str, Outcome]], list[CaptureTask]]:
    """Plan the jobs on one input: probe it once, then each job's shots, sizes and sprites.

    Returns each job's plan outcome (seq 0: what finishing needs, or the error that stops
    the job) and the capture tasks of all the jobs together.
    """
    from snapshot import media  # the decoder: see the module's docstring

    started = time.time()
    outcomes: dict[str, Outcome] = {}
    ready = []
    for job in jobs:
        try:
            _check_before_io(job.parsed, buckets)
            ready.append(job)
        except SnapshotError as error:
            outcomes[job.id] = Outcome(0, error=error)
    reader: CountingReader | None = None
    probe: Probe | None = None
    scenes: dict[int, shots.Found | Exception] = {}
    try:
        if ready:
            with buckets.connect() as storage, storage.open(ready[0].parsed.input) as reader:
                probe = media.probe(reader, limits)
                probe = media.exact_keyframes(reader, probe, _intra_targets(ready, probe, limits), limits)
                scenes = _scenes(ready, reader, probe, limits)
    except Exception as error:  # noqa: BLE001 - one bad video must never stop the pipeline
        outcomes.update((job.id, Outcome(0, error=coded(error, "planning"))) for job in ready)
        probe = None
    tasks: list[CaptureTask] = []
    if probe is not None:
        shots, parts = [], []
        for job in ready:
            try:
                job_shots, layout = _plan_job(job, probe, limits, buckets, scenes.get(job.parsed.config.time_ms))
                warnings = plan.warnings(job.parsed.config, probe.duration_ms, len(job_shots), limits.max_points)
            except Exception as error:  # noqa: BLE001 - one bad job must never stop the others
                outcomes[job.id] = Outcome(0, error=coded(error, "planning"))
                continue
            planned = Planned(probe.duration_ms, len(job_shots), layout, tuple(warnings))
            outcomes[job.id] = Outcome(0, planned=planned)
            shots += job_shots
            parts.append(Part(job.id, job.parsed, layout))
        tasks = _tasks(probe, reader.version if reader else "", shots, parts)
    shares = _shares(reader.bytes_read if reader else 0, [job.id for job in jobs])
    ended = time.time()
    return [
        (job.id, replace(outcomes[job.id], bytes_read=shares[job.id], started=started, ended=ended)) for job in jobs
    ], tasks


def _intra_targets(jobs: list[Job], probe: Probe, limits: Limits) -> list[int]:
    """The points of the intra jobs, whose nearest keyframes must be exact."""
    targets = []
    for job in jobs:
        config = job.parsed.config
        if config.frame_type == spec.FrameType.INTRA:
            try:
                targets += [probe.pts(t) for t in plan.time_points(config, probe.duration_ms, limits.max_points)]
            except SnapshotError:
                pass  # the job fails when it is planned
    return targets


def _scenes(
    jobs: list[Job], reader: CountingReader, probe: Probe, limits: Limits
) -> dict[int, shots.Found | Exception]:
    """The shots from each Time of the scene jobs, found once per Time (media.shot_measures);
    a Time whose detection fails holds its error, for its own scene jobs alone."""
    from snapshot import media

    found: dict[int, shots.Found | Exception] = {}
    for job in jobs:
        start = job.parsed.config.time_ms
        if job.parsed.config.frame_type == spec.FrameType.SCENE and start not in found and start < probe.duration_ms:
            try:
                measures = media.shot_measures(reader, probe, probe.pts(start), limits)
                found[start] = shots.Found(shots.detect(measures, probe.duration_ms), measures)
            except Exception as error:  # noqa: BLE001 - the other jobs on the input go on
                found[start] = error
    return found


def _plan_job(
    job: Job, probe: Probe, limits: Limits, buckets: Buckets, scenes: shots.Found | Exception | None = None
) -> tuple[list[Shot], SheetLayout | None]:
    if isinstance(scenes, Exception):
        raise scenes
    config = job.parsed.config
    size = plan.output_size(config, probe)
    sheets = images.format_of(config.tile_output.name) if config.tile_output else "JPEG"
    layout = tiles.layout(config.tile, size, limits.max_sheet_pixels, sheets) if config.tile else None
    shots = plan.shots(config, probe, limits.max_points, owner=job.id, scenes=scenes)
    _check_output_pixels(config, size, layout, len(shots), limits)
    _check_names(job.parsed, shots, layout, buckets)
    return shots, layout


def _check_names(request: Request, shots: list[Shot], layout: SheetLayout | None, buckets: Buckets) -> None:
    """A job's images, sheets and track are distinct objects, and none is its own input."""
    taken = {buckets.location(request.input.bucket, request.input.name, "Input.Object"): "Input.Object"}
    for field, ref, name in output_names(request, shots, layout):
        where = buckets.location(ref.bucket, name, field)
        if where in taken:
            raise SnapshotError(errors.INVALID_PARAMETER, _clash(field, name, taken[where]))
        taken[where] = field


def _clash(field: str, name: str, earlier: str) -> str:
    """Why an output name is already taken, from the field that took it."""
    if earlier == field:  # known only once planned: scene jobs find their count in the video
        token = "{TileCount}" if field.endswith("TileOutputFile.Object") else "{Count}"
        return f"{field} needs {token}: this job writes several of them"
    if earlier == "Input.Object":
        return f"{field} names {name!r}, which is also the job's own input"
    return f"{field} names {name!r}, which is also a name of its {earlier}"


def output_names(
    request: Request, shots: list[Shot], layout: SheetLayout | None
) -> Iterator[tuple[str, ObjectRef, str]]:
    """(field, where, object name) of every object a job writes: images, sheets, track."""
    config, input_name = request.config, request.input.name
    images_ = [naming.expand(config.output.name, input_name, s.seq, s.requested_ms) for s in shots]
    if config.writes_images:
        yield from (("SnapshotConfig.OutputFile.Object", config.output, name) for name in images_)
    sheets = []
    if layout is not None:
        cells = sum(layout.cell_index(s.seq) is not None for s in shots)
        _, sheets_to = config.sheets
        sheets = [
            naming.expand(sheets_to.name, input_name, tile_count=n) for n in range(1, layout.sheet_count(cells) + 1)
        ]
        yield from (("SnapshotConfig.TileOutputFile.Object", sheets_to, name) for name in sheets)
    if config.vtt and shots:
        if config.vtt_sprite_fragments:
            yield "WebVTT track", config.sheets[1], naming.vtt_name(sheets[0])
        else:
            yield "WebVTT track", config.output, naming.vtt_name(images_[0])


def _tasks(probe: Probe, version: str, shots: list[Shot], parts: list[Part]) -> list[CaptureTask]:
    """Split shots into tasks contiguous in time (see MAX_FRAMES_PER_TASK), the costliest first:
    Beam's local runner deals a stage's elements to its workers in turn, in the order they came.
    The shots with a window (`best`) of each job are tasks of their own: a window that needs
    more frames than allowed fails its own job, not the jobs that share its frames."""
    if not shots:
        return []
    plain = [shot for shot in shots if shot.window is None]
    windowed = sorted({shot.owner for shot in shots if shot.window is not None})
    partitions = [plain, *([s for s in shots if s.window is not None and s.owner == o] for o in windowed)]
    groups = [group for partition in partitions if partition for group in _groups(probe, partition)]
    groups.sort(key=lambda costed: costed[0], reverse=True)
    by_job = {part.job_id: part for part in parts}
    source = parts[0].request.input
    return [
        CaptureTask(
            source,
            version,
            probe.for_targets(
                (t for s in group for t in (s.target_pts, *(s.window or ()))), any(s.black for s in group)
            ),
            tuple(group),
            tuple(by_job[o] for o in sorted({s.owner for s in group})),
        )
        for _, group in groups
    ]


def _groups(probe: Probe, shots: list[Shot]) -> list[tuple[float, list[Shot]]]:
    """Shots in groups contiguous in time, each with its estimated cost."""
    groups: list[tuple[float, list[Shot]]] = []  # (estimated cost, shots)
    current: list[Shot] = []
    cost, frames, previous = 0.0, 0, None
    for shot in sorted(shots, key=lambda s: (s.target_pts, s.owner, s.seq)):
        new_frame = previous is None or not same_frame(shot, previous)
        if previous is not None and new_frame:
            new_gop = probe.keyframe_at_or_before(shot.target_pts) != probe.keyframe_at_or_before(previous.target_pts)
            if frames >= MAX_FRAMES_IN_A_GOP or (new_gop and (frames >= MAX_FRAMES_PER_TASK or cost >= TASK_COST)):
                groups.append((cost, current))
                current, cost, frames, previous = [], 0.0, 0, None
        frames += new_frame
        cost += shot_cost(probe, shot, previous)
        current.append(shot)
        previous = shot
    groups.append((cost, current))
    return groups


def shot_cost(probe: Probe, shot: Shot, previous: Shot | None) -> float:
    """Estimated nanoseconds to capture `shot` after `previous` in the same task: the frames
    decoded to reach it, and its picture. A shot of the frame that `previous` showed decodes
    nothing, and at the same size makes no new picture either."""
    picture = shot.size[0] * shot.size[1] * PICTURE_NS_PER_PIXEL
    if previous is not None and same_frame(shot, previous):
        return 0.0 if shot.size == previous.size else picture
    frames: float
    if shot.window is not None:
        first, last = shot.window
        frames = 2 + (probe.ms(last) - probe.ms(probe.keyframe_at_or_before(first))) / 1000 * ASSUMED_FPS
    elif shot.keyframe or shot.black:
        frames = 1 if not shot.black else BLACK_WINDOW_S * ASSUMED_FPS
    else:
        keyframe = probe.keyframe_at_or_before(shot.target_pts)
        walked_from = max(keyframe, previous.target_pts) if previous is not None and not previous.keyframe else keyframe
        frames = 1 + probe.ms(shot.target_pts) / 1000 * ASSUMED_FPS - probe.ms(walked_from) / 1000 * ASSUMED_FPS
    return frames * probe.width * probe.height * DECODE_NS_PER_PIXEL + picture


def same_frame(shot: Shot, previous: Shot) -> bool:
    """Whether capture shows `shot` with the frame it decoded for `previous` (media.capture
    keeps it for the next shot of the same time and kind; a black-frame search runs anew)."""
    return (
        shot.target_pts == previous.target_pts
        and shot.keyframe == previous.keyframe
        and shot.black is None
        and previous.black is None
        and shot.window == previous.window
    )


def run_task(task: CaptureTask, buckets: Buckets, limits: Limits = Limits()) -> Iterator[tuple[str, Outcome]]:
    """Capture a task's shots in order, yielding each (job id, Outcome) as soon as it is
    made: the single image written and/or the sprite cell kept small, with the input bytes
    read since the previous one. A job whose write fails gets that error as its outcome and
    no more of its shots; the other jobs go on. A failure of the input itself is raised."""
    from snapshot import media

    parts = {part.job_id: part for part in task.parts}
    failed: set[str] = set()
    started = time.time()
    with buckets.connect() as storage, storage.open(task.input, task.input_version) as reader:
        counted = 0
        for captured in media.capture(reader, task.shots, task.probe, limits, skip=failed.__contains__):
            owner = captured.shot.owner
            try:
                outcome = _keep(parts[owner], task.probe, captured, storage)
            except Exception as error:  # noqa: BLE001 - one job's failure stays in that job
                failed.add(owner)
                outcome = Outcome(captured.shot.seq, error=coded(error, "writing"))
            yield owner, replace(outcome, bytes_read=reader.bytes_read - counted, started=started, ended=time.time())
            counted = reader.bytes_read


def _keep(part: Part, probe: Probe, captured: Captured, storage: Storage) -> Outcome:
    """Write one captured picture as a single image and/or keep its sprite cell."""
    request, shot = part.request, captured.shot
    config = request.config
    name = url = ""
    if config.writes_images:
        name = naming.expand(config.output.name, request.input.name, shot.seq, shot.requested_ms)
        url = storage.write(config.output, name, captured.encoded(images.format_of(name), config.quality))
    image = SnapshotImage(
        shot.seq,
        name,
        url,
        shot.requested_ms,
        round(probe.ms(captured.frame_pts)),
        *captured.image.size,
        color_in=captured.color.text,
        tone_mapped=captured.color.hdr,
        shot_ms=shot.scene,
    )
    cell = None
    if part.layout and part.layout.cell_index(shot.seq) is not None:
        cell = images.cell_jpeg(captured.image, (part.layout.cell_width, part.layout.cell_height))
    where = f"shot at {shot.requested_ms} ms" if shot.scene else f"point {shot.requested_ms} ms"
    unclear = f"{where}: no frame in its window is clear; the nearest is shown"
    return Outcome(shot.seq, image=image, cell=cell, warning="" if captured.clear else unclear)


def _check_output_pixels(
    config: spec.SnapshotConfig, size: tuple[int, int], layout: SheetLayout | None, shots: int, limits: Limits
) -> None:
    """The pixels a job writes, single images and sheets together, must stay under the cap."""
    total = shots * size[0] * size[1] if config.writes_images else 0
    if layout is not None:
        cells = sum(layout.cell_index(seq) is not None for seq in range(1, shots + 1))
        total += sum(w * h for w, h in (layout.sheet_size(n, cells) for n in range(1, layout.sheet_count(cells) + 1)))
    if total > limits.max_output_pixels:
        raise SnapshotError(
            errors.OUT_OF_RANGE, f"the job would write {total} pixels, over the cap of {limits.max_output_pixels}"
        )


def _check_before_io(request: Request, buckets: Buckets) -> None:
    """Every RoleArn must be one the deployment knows, and every bucket and name one that its
    storage accepts (GCS's rules), before any I/O."""
    config = request.config
    refs = {
        "Input": (request.input, request.input.name),
        "SnapshotConfig.OutputFile": (config.output, naming.expand(config.output.name, request.input.name)),
    }
    if config.tile_output is not None:
        sheets = naming.expand(config.tile_output.name, request.input.name)
        refs["SnapshotConfig.TileOutputFile"] = (config.tile_output, sheets)
    for field_name, (ref, name) in refs.items():
        buckets.check_role(ref.role_arn, f"{field_name}.RoleArn")
        buckets.location(ref.bucket, name, f"{field_name}.Bucket")


def coded(error: Exception, step: str) -> SnapshotError:
    if isinstance(error, SnapshotError):
        return error
    log.error("%s failed", step, exc_info=error)
    return internal_error()


def internal_error() -> SnapshotError:
    return SnapshotError(
        errors.INTERNAL_ERROR, "an internal error occurred; see the run's log (the command names it) or the worker logs"
    )


def _shares(total: int, job_ids: Iterable[str]) -> dict[str, int]:
    """`total` bytes split evenly over the jobs that shared them (the first gets the rest)."""
    job_ids = list(dict.fromkeys(job_ids))
    if not job_ids:
        return {}
    share, rest = divmod(total, len(job_ids))
    return {job_id: share + (rest if n == 0 else 0) for n, job_id in enumerate(job_ids)}
