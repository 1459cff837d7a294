"""The floor of the design: the pipeline's plan and capture code with no Beam, as one command.

    .venv/bin/python -m benchmarks.bare MANIFEST BUCKET_ROOT

Plans the jobs per input in this process, runs the capture tasks over 2 processes, and
finishes each job, exactly as the pipeline's steps do, but without a runner, shuffles,
isolation or result files.
"""

from __future__ import annotations

import multiprocessing
import sys

from snapshot import assemble, guarded, jobs, tasks
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.storage import Buckets

LIMITS = Limits(isolate=False)


def _capture(args):
    task, root = args
    return guarded.run_task_guarded(task, Buckets(root), LIMITS)


def plan(lines: list[str], buckets: Buckets) -> tuple[list, list, list[tasks.CaptureTask]]:
    """The jobs of manifest lines, planned per input as the pipeline does: (jobs, the plan
    outcomes, the capture tasks)."""
    parsed = [jobs.read_job(ManifestLine("m", n, line.strip()), "now") for n, line in enumerate(lines, 1)]
    by_input: dict[str, list] = {}
    for job in parsed:
        if job.error is None:
            by_input.setdefault(jobs.input_key(job), []).append(job)
    outcomes, cut = [], []
    for group in by_input.values():
        planned, group_tasks = tasks.plan_input(group, buckets, LIMITS)
        outcomes += planned
        cut += group_tasks
    return parsed, outcomes, cut


def main(manifest: str, root: str) -> None:
    buckets = Buckets(root)
    with open(manifest) as lines:
        parsed, outcomes, cut = plan(list(lines), buckets)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        for done in pool.imap_unordered(_capture, [(task, root) for task in cut]):
            outcomes += done
    by_job: dict[str, list] = {}
    for job_id, outcome in outcomes:
        by_job.setdefault(job_id, []).append(outcome)
    results = [assemble.finish(job, by_job.get(job.id, []), buckets) for job in parsed]
    print(f"{sum(r.state == 'Success' for r in results)} of {len(results)} jobs succeeded")


if __name__ == "__main__":
    main(*sys.argv[1:3])
