"""Planning and capture in decoding processes, each job within its own time limit."""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace

from snapshot import errors, isolation
from snapshot.errors import SnapshotError
from snapshot.jobs import Job
from snapshot.limits import Limits
from snapshot.storage import Buckets
from snapshot.tasks import CaptureTask, Outcome, coded, plan_input, run_task
from snapshot.video import Shot

# what a decoding process imports before it is ready: the decoder (PyAV, Pillow and its plugins), then the steps
DECODING_STACK = ("snapshot.media", "snapshot.tasks", "snapshot.assemble")


def plan_input_guarded(
    jobs: list[Job], buckets: Buckets, limits: Limits, pool: isolation.Pool | None = None
) -> tuple[list[tuple[str, Outcome]], list[CaptureTask]]:
    """plan_input in a decoding process of `pool` (of its own without one) that is killed past
    the most generous probe limit of the jobs (they share the probe): a stalled input holds
    back the run for that long only."""
    seconds = max(limits.probe_timeout(job.parsed.config.is_async) for job in jobs)
    try:
        if not limits.isolate:
            return plan_input(jobs, buckets, limits)
        with decoders(pool, limits) as using:
            return using.run(plan_input, (jobs, buckets, limits), seconds)
    except SnapshotError as error:
        return [(job.id, Outcome(0, error=error, ended=time.time())) for job in jobs], []


def run_task_guarded(
    task: CaptureTask, buckets: Buckets, limits: Limits, pool: isolation.Pool | None = None
) -> list[tuple[str, Outcome]]:
    """run_task in a decoding process of `pool` (of its own without one), each job within its
    own time limit.

    A job's clock runs while the task works on that job's next shot. When it runs out, the
    process is killed, that job fails with SnapshotTimeOut (keeping the images it has), and
    the other jobs' shots go on in a fresh process. Any other failure of the task fails every
    job with shots left.
    """
    outcomes: list[tuple[str, Outcome]] = []
    failed: set[str] = set()
    spent: dict[str, float] = defaultdict(float)
    limit = {part.job_id: limits.timeout_s(part.request.config.is_async) for part in task.parts}
    remaining: CaptureTask | None = task
    with decoders(pool, limits) if limits.isolate else contextlib.nullcontext() as using:
        while remaining is not None:
            waiting = _Waiting(remaining, failed)
            try:
                seconds = functools.partial(waiting.seconds, limit, spent)
                for job_id, outcome in _run(remaining, buckets, limits, using, seconds):
                    spent[job_id] += waiting.arrived(job_id, outcome.seq)
                    outcomes.append((job_id, outcome))
                    if outcome.error is not None:
                        failed.add(job_id)
            except Exception as error:  # noqa: BLE001 - one bad video must never stop the pipeline
                failure = coded(error, "capture")
                stalled = waiting.next_shot()
                if failure.code != errors.SNAPSHOT_TIMEOUT or stalled is None:
                    outcomes += _unfinished(remaining, outcomes, failed, failure)
                    break
                outcomes.append((stalled.owner, Outcome(stalled.seq, error=failure, ended=time.time())))
                failed.add(stalled.owner)
                remaining = _without(remaining, outcomes, failed)
            else:
                remaining = None
    return outcomes


def _run(
    task: CaptureTask, buckets: Buckets, limits: Limits, pool: isolation.Pool | None, seconds: Callable[[], float]
) -> Iterator[tuple[str, Outcome]]:
    """The task's outcomes: in a decoding process of `pool`, or here without one."""
    if pool is None:
        return run_task(task, buckets, limits)
    return pool.stream(run_task, (task, buckets, limits), seconds)


@contextlib.contextmanager
def decoders(pool: isolation.Pool | None, limits: Limits) -> Iterator[isolation.Pool]:
    """`pool`, or a pool of its own that ends with the block."""
    if pool is not None:
        yield pool
        return
    with decoding_pool(limits) as own:
        yield own


def decoding_pool(limits: Limits) -> isolation.Pool:
    """Decoding processes, capped at `limits.decoder_memory_mb`, that load the decoding stack
    before their first call, at most `limits.max_decoders` at work on the machine."""
    return isolation.Pool(limits.decoder_memory_mb, DECODING_STACK, limits.max_decoders)


def shared_decoding_pool(limits: Limits) -> isolation.Pool:
    """The decoding processes that this process's steps share (see isolation.shared): release it."""
    return isolation.shared(limits.decoder_memory_mb, DECODING_STACK, limits.max_decoders)


class _Waiting:
    """Which shot of a task the decoding process works on, and since when."""

    def __init__(self, task: CaptureTask, failed: set[str]):
        self.shots, self.failed = list(task.shots), failed  # in the order the task captures them
        self.position = 0
        self.since: float | None = None

    def next_shot(self) -> Shot | None:
        while self.position < len(self.shots) and self.shots[self.position].owner in self.failed:
            self.position += 1
        return self.shots[self.position] if self.position < len(self.shots) else None

    def seconds(self, limit: dict[str, float], spent: dict[str, float]) -> float:
        """What the owner of the next shot has left of its time limit; the clock starts now."""
        if self.since is None:
            self.since = time.monotonic()
        shot = self.next_shot()
        return max(limit.values()) if shot is None else limit[shot.owner] - spent[shot.owner]

    def arrived(self, job_id: str, seq: int) -> float:
        """A shot's outcome arrived: the seconds it took."""
        now = time.monotonic()
        took, self.since = now - (self.since or now), now
        shot = self.next_shot()
        if shot is not None and (shot.owner, shot.seq) == (job_id, seq):
            self.position += 1
        return took


def _unfinished(
    task: CaptureTask, outcomes: list[tuple[str, Outcome]], failed: set[str], error: SnapshotError
) -> list[tuple[str, Outcome]]:
    """One failed outcome for each job not failed yet with shots of the task not captured."""
    done = {(job_id, outcome.seq) for job_id, outcome in outcomes}
    result: dict[str, tuple[str, Outcome]] = {}
    for shot in task.shots:
        if (shot.owner, shot.seq) not in done and shot.owner not in failed:
            result.setdefault(shot.owner, (shot.owner, Outcome(shot.seq, error=error, ended=time.time())))
    return list(result.values())


def _without(task: CaptureTask, outcomes: list[tuple[str, Outcome]], failed: set[str]) -> CaptureTask | None:
    """The task's shots still to capture, of the jobs not failed; None when there are none."""
    done = {(job_id, outcome.seq) for job_id, outcome in outcomes}
    shots = tuple(s for s in task.shots if s.owner not in failed and (s.owner, s.seq) not in done)
    if not shots:
        return None
    owners = {s.owner for s in shots}
    return replace(task, shots=shots, parts=tuple(p for p in task.parts if p.job_id in owners))
