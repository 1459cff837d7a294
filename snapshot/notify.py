"""Job-end notifications (SPEC.md section 7): the message, its targets, and sending it.

A pipelines file maps a PipelineId to a target: an HTTP(S) URL (POST of the JSON message), a
local or gs:// JSON Lines file, or `pubsub://projects/P/topics/T`. Without one, every message
goes to the default JSON Lines file beside the results. Delivery is at least once: a job's
MessageId and JobId are the same on every attempt, so a receiver can drop duplicates.
A target that is down is retried within a bound and recorded as failed; it never fails a job.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace

import requests

from snapshot import errors, results, storage
from snapshot.errors import SnapshotError
from snapshot.results import JobResult
from snapshot.storage import Retry

log = logging.getLogger(__name__)

FILE, HTTP, PUBSUB = "file", "http", "pubsub"


@dataclass(frozen=True)
class Delivery:
    """How hard a target is tried: attempts with exponential backoff, a timeout per attempt."""
    attempts: int = 3
    initial_s: float = 0.5
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Targets:
    """Where each PipelineId's messages go."""
    default: str                                   # the JSON Lines file used without a pipelines file
    pipelines: dict[str, str] | None = None        # PipelineId -> target, from the pipelines file
    delivery: Delivery = field(default_factory=Delivery)

    @classmethod
    def from_file(cls, default: str, pipelines_file: str | None, delivery: Delivery = Delivery()) -> Targets:
        pipelines = None
        if pipelines_file:
            with open(pipelines_file, encoding="utf-8") as stream:
                pipelines = json.load(stream)
            if not isinstance(pipelines, dict) or not all(isinstance(v, str) for v in pipelines.values()):
                raise ValueError(f"the pipelines file {pipelines_file} must map PipelineIds to target strings")
            for target in pipelines.values():
                kind(target)
        return cls(default, pipelines, delivery)

    def check(self, pipeline_id: str) -> None:
        """Refuse, before any capture work, a PipelineId the pipelines file does not list."""
        if pipeline_id and self.pipelines is not None and pipeline_id not in self.pipelines:
            raise SnapshotError(errors.INVALID_PARAMETER, f"PipelineId {pipeline_id!r} is not a known pipeline")

    def target(self, pipeline_id: str) -> str | None:
        """The target of a job's message; None when the job has no PipelineId."""
        if not pipeline_id:
            return None
        return self.default if self.pipelines is None else self.pipelines.get(pipeline_id)


def kind(target: str) -> str:
    if target.startswith(("http://", "https://")):
        return HTTP
    if target.startswith("pubsub://projects/"):
        return PUBSUB
    if target.endswith(".jsonl"):
        return FILE
    raise ValueError(f"a notification target must be an http(s) URL, pubsub://projects/P/topics/T or a "
                     f".jsonl file: {target}")


def message_id(job_id: str) -> str:
    return hashlib.md5(f"message:{job_id}".encode()).hexdigest().upper()


def message(record: dict) -> dict:
    """The message body, keys in both spellings as the API sends them; code/msg only on failure."""
    body = {"jobId": record["Id"], "JobId": record["Id"],
            "requestId": results.request_id(record["Id"]), "RequestId": results.request_id(record["Id"]),
            "type": "Snapshot", "Type": "Snapshot", "state": record["State"], "State": record["State"]}
    if record["State"] != results.SUCCESS:
        body.update(code=record["Code"], msg=record["Message"])
    body.update(userData=record["UserData"], UserData=record["UserData"])
    return body


def sent(job_id: str) -> dict:
    return {"MessageId": message_id(job_id), "ErrorCode": None, "ErrorMessage": None}


def not_sent(code: str, text: str) -> dict:
    return {"MessageId": None, "ErrorCode": code, "ErrorMessage": text}


def post(url: str, record: dict, delivery: Delivery) -> dict:
    """POST the message to an HTTP(S) target; the MNSMessageResult."""
    body = json.dumps(message(record)).encode()
    headers = {"Content-Type": "application/json", "X-Message-Id": message_id(record["Id"])}
    failure = not_sent("NotifyFailed", "not tried")
    delay = delivery.initial_s
    for attempt in range(1, delivery.attempts + 1):
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=delivery.timeout_s)
            if answer.status_code < 300:
                return sent(record["Id"])
            failure = not_sent("HttpError", f"HTTP {answer.status_code} after {attempt} attempt(s)")
            if answer.status_code < 500 and answer.status_code != 429:
                return failure  # the receiver refuses this message; asking again will not help
        except requests.Timeout:
            failure = not_sent("Timeout", f"no answer within {delivery.timeout_s:g} s, {attempt} attempt(s)")
        except requests.RequestException as error:
            failure = not_sent("ConnectionError", f"{type(error).__name__} after {attempt} attempt(s)")
        if attempt < delivery.attempts:
            time.sleep(delay)
            delay *= 2
    log.warning("notification of job %s to %s failed: %s", record["Id"], url, failure["ErrorMessage"])
    return failure


def publish(topic: str, record: dict, delivery: Delivery) -> dict:
    """Publish the message to a Pub/Sub topic (needs google-cloud-pubsub); the MNSMessageResult."""
    try:
        from google.cloud import pubsub_v1
    except ImportError:
        return not_sent("NotifyFailed", "google-cloud-pubsub is not installed")
    try:
        publisher = pubsub_v1.PublisherClient()
        future = publisher.publish(topic[len("pubsub://"):], json.dumps(message(record)).encode(),
                                   message_id=message_id(record["Id"]))
        future.result(timeout=delivery.timeout_s * delivery.attempts)
        return sent(record["Id"])
    except Exception as error:  # noqa: BLE001 - a target that is down never fails the job
        return not_sent("NotifyFailed", f"Pub/Sub: {type(error).__name__}")


def add_to_file(target: str, records: list[dict], retry: Retry = Retry()) -> list[dict]:
    """Add the messages of `records` to a JSON Lines target in one write; their MNSMessageResults."""
    lines = [json.dumps(message(r), ensure_ascii=False) for r in sorted(records, key=lambda r: r["Id"])]
    try:
        storage.add_to_file(target, ("\n".join(lines) + "\n").encode(), retry)
        return [sent(r["Id"]) for r in records]
    except (SnapshotError, OSError) as error:
        text = error.message if isinstance(error, SnapshotError) else (error.strerror or type(error).__name__)
        log.warning("notifications to %s failed: %s", target, text)
        return [not_sent("NotifyFailed", f"writing the messages file failed: {text}") for _ in records]


def deliver(target: str, records: list[dict], delivery: Delivery) -> list[dict]:
    """Send the messages of `records` to one target; their MNSMessageResults, in order."""
    kind_ = kind(target)
    if kind_ == FILE:
        return add_to_file(target, records)
    send = post if kind_ == HTTP else publish
    return [send(target, record, delivery) for record in records]


def notified(job_results: list[JobResult], target: str, delivery: Delivery) -> list[JobResult]:
    """The results, each with the MNSMessageResult of its message sent to `target`."""
    outcomes = deliver(target, [r.to_record() for r in job_results], delivery)
    return [replace(r, mns_message_result=o) for r, o in zip(job_results, outcomes, strict=True)]
