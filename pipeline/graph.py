"""The pipeline graph: manifest lines in, JPGs and one Avro result per line out."""
from __future__ import annotations

import apache_beam as beam

from snapshot.storage import Buckets
from transforms.jobs import AssembleResults, Capture, ParseJobs, PlanCaptures
from transforms.manifest import ReadManifest
from transforms.results import WriteResults


def build(p: beam.Pipeline, manifest: str, results_prefix: str, buckets: Buckets):
    parsed = p | "ReadManifest" >> ReadManifest(manifest) | "ParseJobs" >> ParseJobs()
    planned = parsed | "PlanCaptures" >> PlanCaptures(buckets)
    captured = planned.tasks | "Capture" >> Capture(buckets)
    outcomes = (planned.outcomes, captured) | "Outcomes" >> beam.Flatten()
    return ((parsed, outcomes)
            | "AssembleResults" >> AssembleResults(buckets)
            | "WriteResults" >> WriteResults(results_prefix))
