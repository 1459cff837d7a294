"""Notify: each finished job with a PipelineId sends its message; the outcome lands in its result.

The sending (snapshot.notify: tenacity, the webhook client) is imported at the first message:
a run whose jobs have no PipelineId never loads it.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from typing import TYPE_CHECKING

import apache_beam as beam

from snapshot.targets import TargetKind, Targets, kind

if TYPE_CHECKING:
    from snapshot.notify import Sender

SEND_BATCH = 64  # messages sent together, up to Delivery.concurrency at once


class Route(enum.IntEnum):
    """The partitions of Notify/Route: how a job's message travels."""

    SILENT = 0  # the job has no target: no message
    DIRECT = 1  # one request per message, in concurrent batches
    TO_FILE = 2  # every message of a file in one append


def _route(keyed, _count) -> int:
    target, _result = keyed
    if not target:
        return Route.SILENT
    return Route.TO_FILE if kind(target) is TargetKind.FILE else Route.DIRECT


class _Send(beam.DoFn):
    """[(target, JobResult), ...] -> each JobResult with its MNSMessageResult. The Sender
    lives as long as the worker's DoFn, so a target found down stays down."""

    def __init__(self, targets: Targets):
        self.targets = targets

    def setup(self):
        self.sender: Sender | None = None  # made at the first message

    def process(self, pairs):
        if self.sender is None:
            from snapshot import notify

            self.sender = notify.Sender(self.targets.delivery, self.targets.staging, self.targets.down)
        by_target = defaultdict(list)
        for target, result in pairs:
            by_target[target].append(result)
        for target, job_results in by_target.items():
            yield from self.sender.notified(job_results, target)


class Notify(beam.PTransform):
    """JobResult -> JobResult with MNSMessageResult. HTTP and Pub/Sub targets get one request
    per job, sent concurrently in batches; a JSON Lines target gets all its messages in one
    append.

    Args:
        targets: where each PipelineId's messages go, and how they are delivered.
    """

    def __init__(self, targets: Targets):
        super().__init__()
        self.targets = targets

    def expand(self, job_results):
        targets = self.targets
        keyed = job_results | "Target" >> beam.Map(lambda r: (targets.target(r.pipeline_id) or "", r))
        silent, direct, files = keyed | "Route" >> beam.Partition(_route, len(Route))
        sent = (
            direct
            | "Batch" >> beam.BatchElements(min_batch_size=SEND_BATCH, max_batch_size=SEND_BATCH)
            | "Send" >> beam.ParDo(_Send(targets))
        )
        written = (
            files
            | "ByFile" >> beam.GroupByKey()
            | "Pairs" >> beam.MapTuple(lambda target, rs: [(target, r) for r in rs])
            | "Write" >> beam.ParDo(_Send(targets))
        )
        return (silent | "Untouched" >> beam.Values(), sent, written) | "Notified" >> beam.Flatten()
