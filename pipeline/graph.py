"""The pipeline graph: manifest lines in, JPGs and one Avro result per line out."""

from __future__ import annotations

import apache_beam as beam

from snapshot.limits import Limits
from snapshot.parts import Part
from snapshot.storage import Buckets
from snapshot.targets import Targets
from transforms.jobs import AssembleResults, Capture, ParseJobs, PlanCaptures
from transforms.manifest import ReadManifest
from transforms.notify import Notify
from transforms.results import WriteResults
from transforms.resume import CarryOver


def build(
    p: beam.Pipeline,
    manifest: str,
    results_prefix: str,
    buckets: Buckets,
    targets: Targets | None = None,
    limits: Limits = Limits(),
    resume: list[str] | None = None,
    progress: str | None = None,
    part: Part | None = None,
    spread: bool = True,
):
    """Without `targets`, messages go to PREFIX-messages.jsonl. With `resume` (the results
    files of an earlier run), the jobs that succeeded there are carried over, not run. With
    `progress` (a socket of pipeline.progress), each finished job is told there. With `part`,
    only those lines of the manifest are read (a local run in parts). Without `spread` (a
    runner with one worker), the capture tasks are not reshuffled."""
    targets = targets or Targets(default_messages_file(results_prefix))
    parsed = p | "ReadManifest" >> ReadManifest(manifest, part) | "ParseJobs" >> ParseJobs(targets)
    carried = None
    if resume:
        parsed, carried = parsed | "CarryOver" >> CarryOver(resume, part)
    planned = parsed | "PlanCaptures" >> PlanCaptures(buckets, limits)
    captured = planned.tasks | "Capture" >> Capture(buckets, limits, spread)
    return (
        (parsed, planned.outcomes, captured)
        | "AssembleResults" >> AssembleResults(buckets, limits)
        | "Notify" >> Notify(targets)
        | "WriteResults" >> WriteResults(results_prefix, carried, progress)
    )


def default_messages_file(results_prefix: str) -> str:
    return f"{results_prefix}-messages.jsonl"
