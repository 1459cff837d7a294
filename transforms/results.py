"""WriteResults: one Avro record per job, in PREFIX-SSSSS-of-NNNNN.avro files; each finished
job is also told to the local command's progress line, when it has one."""

from __future__ import annotations

import contextlib
import socket

import apache_beam as beam
from apache_beam.io.avroio import WriteToAvro
from apache_beam.metrics import Metrics

from snapshot import results
from snapshot.results import JobResult

_succeeded = Metrics.counter("snapshot", "jobs_succeeded")
_failed = Metrics.counter("snapshot", "jobs_failed")
_images = Metrics.counter("snapshot", "images_written")
_sheets = Metrics.counter("snapshot", "sheets_written")


def _counted_record(result: JobResult, progress: str | None) -> dict:
    (_succeeded if result.state == results.State.SUCCESS else _failed).inc()
    _images.inc(result.count)
    _sheets.inc(len(result.tiles))
    tell(progress, result.state != results.State.SUCCESS, result.count)
    return result.to_record()


def _told(record: dict, progress: str | None) -> dict:
    tell(progress, record["State"] != results.State.SUCCESS, record["Count"])
    return record


def tell(path: str | None, failed: bool, images: int) -> None:
    """One job finished: a datagram to the progress socket at `path` (pipeline.progress). It
    never fails the job."""
    if not path:
        return
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.settimeout(1.0)
        sender.sendto(f"{int(failed)} {images}".encode(), path)


class WriteResults(beam.PTransform):
    """JobResults, and the records carried over from an earlier run if any, to Avro.

    Args:
        prefix: the results prefix, local or gs://: files PREFIX-SSSSS-of-NNNNN.avro.
        carried: a PCollection of records carried over unchanged (CarryOver's), or None.
        progress: the Unix socket of the local command's progress line, or None.
    """

    def __init__(self, prefix: str, carried=None, progress: str | None = None):
        super().__init__()
        self.prefix, self.carried, self.progress = prefix, carried, progress

    def expand(self, job_results):
        records = job_results | "ToRecord" >> beam.Map(_counted_record, self.progress)
        if self.carried is not None:
            carried = self.carried | "ToldCarried" >> beam.Map(_told, self.progress)
            records = (records, carried) | "WithCarried" >> beam.Flatten()
        return records | "WriteAvro" >> WriteToAvro(self.prefix, schema=results.load_schema(), file_name_suffix=".avro")
