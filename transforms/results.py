"""WriteResults: one Avro record per job, in PREFIX-SSSSS-of-NNNNN.avro files."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.io.avroio import WriteToAvro
from apache_beam.metrics import Metrics

from snapshot import results
from snapshot.results import JobResult

_succeeded = Metrics.counter("snapshot", "jobs_succeeded")
_failed = Metrics.counter("snapshot", "jobs_failed")
_images = Metrics.counter("snapshot", "images_written")


def _counted_record(result: JobResult) -> dict:
    (_succeeded if result.state == results.SUCCESS else _failed).inc()
    _images.inc(result.count)
    return result.to_record()


class WriteResults(beam.PTransform):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def expand(self, job_results):
        return (job_results
                | "ToRecord" >> beam.Map(_counted_record)
                | "WriteAvro" >> WriteToAvro(self.prefix, schema=results.load_schema(),
                                             file_name_suffix=".avro"))
