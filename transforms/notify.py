"""Notify: each finished job with a PipelineId sends its message; the outcome lands in its result."""
from __future__ import annotations

import apache_beam as beam

from snapshot import notify
from snapshot.notify import Targets

NONE, DIRECT, FILE = range(3)


def _route(keyed, _count) -> int:
    target, _result = keyed
    if not target:
        return NONE
    return FILE if notify.kind(target) == notify.FILE else DIRECT


class Notify(beam.PTransform):
    """JobResult -> JobResult with MNSMessageResult. HTTP and Pub/Sub targets get one request
    per job; a JSON Lines target gets all its messages in one write."""

    def __init__(self, targets: Targets):
        super().__init__()
        self.targets = targets

    def expand(self, job_results):
        targets = self.targets
        keyed = job_results | "Target" >> beam.Map(lambda r: (targets.target(r.pipeline_id) or "", r))
        silent, direct, files = keyed | "Route" >> beam.Partition(_route, 3)
        sent = direct | "Send" >> beam.MapTuple(lambda t, r: notify.notified([r], t, targets.delivery)[0])
        written = (files
                   | "ByFile" >> beam.GroupByKey()
                   | "Write" >> beam.FlatMapTuple(lambda t, rs: notify.notified(list(rs), t, targets.delivery)))
        return (silent | "Untouched" >> beam.Values(), sent, written) | "Notified" >> beam.Flatten()
