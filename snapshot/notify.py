"""Job-end notifications (docs/operations.md#notifications): the message, and sending it to its
target (snapshot.targets): a POST of the JSON message to an HTTP(S) URL, a line appended to a
JSON Lines file, or a Pub/Sub message.

Delivery is at least once: each message carries a MessageId derived from its job id and its
content, the same on every attempt and every run of the line that gives the same outcome, so
a receiver can drop duplicates by it. A target that is down is retried within a bound and
recorded as failed; it never fails a job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import tenacity

from snapshot import objects, results, storage, webhook
from snapshot.errors import SnapshotError
from snapshot.objects import Retry
from snapshot.results import JobResult
from snapshot.targets import Delivery, TargetKind, kind, redact, staged_name

log = logging.getLogger(__name__)


def message_id(record: dict) -> str:
    """The id of the message of `record`: from its job id and the message's content, so a retry
    or a rerun with the same outcome sends the same id, and a different outcome a new one."""
    content = json.dumps(_content(record), sort_keys=True, ensure_ascii=False)
    return hashlib.md5(f"message:{content}".encode("utf-8", "surrogatepass")).hexdigest().upper()


def message(record: dict) -> dict:
    """The message body, keys in both spellings as the API sends them; code/msg only on
    failure; its MessageId (**ext**) first."""
    identity = message_id(record)
    return {"messageId": identity, "MessageId": identity, **_content(record)}


def _content(record: dict) -> dict:
    body = {
        "jobId": record["Id"],
        "JobId": record["Id"],
        "requestId": results.request_id(record["Id"]),
        "RequestId": results.request_id(record["Id"]),
        "type": "Snapshot",
        "Type": "Snapshot",
        "state": record["State"],
        "State": record["State"],
    }
    if record["State"] != results.State.SUCCESS:
        body.update(code=record["Code"], msg=record["Message"])
    body.update(userData=record["UserData"], UserData=record["UserData"])
    return body


def sent(record: dict) -> dict:
    return {"MessageId": message_id(record), "ErrorCode": None, "ErrorMessage": None}


def not_sent(code: str, text: str) -> dict:
    return {"MessageId": None, "ErrorCode": code, "ErrorMessage": text}


class Sender:
    """Sends messages and remembers which targets are down. One per worker; thread-safe.

    Args:
        delivery: attempts, time limits, concurrency, and after how many failures in a row a
            target counts as down.
        staging: messages to files are written there whole, one file per target, for the
            command to deliver (pipeline.delivery); None appends them to the target itself.
        down: targets already down: their messages fail at once.
    """

    def __init__(self, delivery: Delivery = Delivery(), staging: str | None = None, down: frozenset[str] = frozenset()):
        self.delivery, self.staging = delivery, staging
        self._failures: dict[str, int] = dict.fromkeys(down, delivery.down_after)
        self._lock = threading.Lock()

    def notified(self, job_results: list[JobResult], target: str, deadline: float | None = None) -> list[JobResult]:
        """The results, each with the MNSMessageResult of its message sent to `target`."""
        outcomes = self.deliver(target, [r.to_record() for r in job_results], deadline)
        return [replace(r, mns_message_result=o) for r, o in zip(job_results, outcomes, strict=True)]

    def deliver(self, target: str, records: list[dict], deadline: float | None = None) -> list[dict]:
        """Send the messages of `records` to one target; their MNSMessageResults, in order.
        `deadline` (time.monotonic()) bounds the whole delivery, retries included."""
        try:
            kind_ = kind(target)
        except ValueError as error:
            return [not_sent("NotifyFailed", str(error)) for _ in records]
        if kind_ is TargetKind.FILE and self.is_down(target):
            return [self._down() for _ in records]
        if kind_ is TargetKind.FILE:
            return stage(self.staging, target, records) if self.staging else add_to_file(target, records)
        send = self._post if kind_ is TargetKind.HTTP else self._publish
        if len(records) == 1:
            return [self._guarded(send, target, records[0], deadline)]
        with ThreadPoolExecutor(max_workers=min(self.delivery.concurrency, len(records))) as pool:
            return list(pool.map(lambda record: self._guarded(send, target, record, deadline), records))

    def is_down(self, target: str) -> bool:
        with self._lock:
            return self._failures.get(target, 0) >= self.delivery.down_after

    def _down(self) -> dict:
        return not_sent("NotifyFailed", "target down: earlier messages to it failed in this run")

    def _guarded(self, send, target: str, record: dict, deadline: float | None) -> dict:
        if self.is_down(target):
            return self._down()
        try:
            outcome = send(target, record, deadline)
        except Exception as error:  # noqa: BLE001 - a target, whatever it does, never fails the job
            outcome = not_sent("NotifyFailed", type(error).__name__)
        with self._lock:
            self._failures[target] = 0 if outcome["MessageId"] else self._failures.get(target, 0) + 1
        if not outcome["MessageId"]:
            log.warning(
                "notification of job %s to %s failed: %s", record["Id"], redact(target), outcome["ErrorMessage"]
            )
        return outcome

    def _post(self, url: str, record: dict, deadline: float | None) -> dict:
        """POST the message, one bounded `webhook.post` per attempt. tenacity retries 5xx, 429,
        timeouts and lost connections with exponential backoff, and starts no attempt that
        the deadline leaves no time for."""
        delivery = self.delivery
        body = json.dumps(message(record)).encode()
        headers = {"Content-Type": "application/json", "X-Message-Id": message_id(record)}

        def backoff(state: tenacity.RetryCallState) -> float:
            return delivery.initial_s * 2 ** (state.attempt_number - 1)

        stops: list[tenacity.stop.stop_base] = [tenacity.stop_after_attempt(delivery.attempts)]
        if deadline is not None:  # no attempt that the deadline leaves no time for
            stops.append(tenacity.stop_before_delay(deadline - time.monotonic()))
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(_worth_retrying),
            stop=tenacity.stop_any(*stops),
            wait=backoff,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        answer = retrying(lambda: webhook.post(url, body, headers, _left(delivery.timeout_s, deadline)))
        return _outcome(record, answer, retrying.statistics.get("attempt_number", 1))

    def _publish(self, topic: str, record: dict, deadline: float | None) -> dict:
        """Publish the message to a Pub/Sub topic (needs google-cloud-pubsub)."""
        try:
            from google.cloud import pubsub_v1
        except ImportError:
            return not_sent("NotifyFailed", "google-cloud-pubsub is not installed")
        publisher = pubsub_v1.PublisherClient()
        future = publisher.publish(
            topic[len("pubsub://") :], json.dumps(message(record)).encode(), message_id=message_id(record)
        )
        future.result(timeout=_left(self.delivery.timeout_s * self.delivery.attempts, deadline))
        return sent(record)


def _worth_retrying(answer: webhook.Answer) -> bool:
    """A 5xx, a 429, a timeout or a lost connection; not a refusal or a bad URL."""
    if answer.status is not None:
        return answer.status >= 500 or answer.status == 429
    return answer.error is not webhook.Failure.INVALID_URL


def _outcome(record: dict, answer: webhook.Answer, attempts: int) -> dict:
    """The MNSMessageResult of the last answer to a POST."""
    if answer.status is not None and answer.status < 300:
        return sent(record)
    if answer.status is not None:
        redirect = ": redirects are not followed" if answer.status < 400 else ""
        return not_sent("HttpError", f"HTTP {answer.status} after {attempts} attempt(s){redirect}")
    return not_sent(answer.error or "NotifyFailed", f"{answer.detail}, {attempts} attempt(s)")


def _left(seconds: float, deadline: float | None) -> float:
    return seconds if deadline is None else min(seconds, deadline - time.monotonic())


def lines_of(records: list[dict]) -> tuple[list[int], list[bytes]]:
    """The order of `records` by job id, and their messages' lines in that order."""
    order = sorted(range(len(records)), key=lambda i: records[i]["Id"])
    return order, [(json.dumps(message(records[i]), ensure_ascii=False) + "\n").encode() for i in order]


def stage(folder: str, target: str, records: list[dict]) -> list[dict]:
    """Write the messages of `records` to `target`'s staged file in `folder`, whole; their
    MNSMessageResults: sent, since the command delivers them once their part is done, and
    marks in the results any it could not (pipeline.delivery)."""
    _order, lines = lines_of(records)
    root = storage.connect(folder)
    try:
        root.write(staged_name(target), b"".join(lines))
    except Exception as error:  # noqa: BLE001 - a target, whatever it does, never fails the job
        text = error.message if isinstance(error, SnapshotError) else type(error).__name__
        log.warning("staging the messages to %s failed: %s", redact(target), text)
        return [not_sent("NotifyFailed", f"writing the messages failed: {text}") for _ in records]
    finally:
        root.close()
    return [sent(record) for record in records]


def add_to_file(target: str, records: list[dict], retry: Retry = Retry()) -> list[dict]:
    """Append the messages of `records` to a JSON Lines target; their MNSMessageResults. A
    message is sent once its whole line is written; those after a failed write are not."""
    order, lines = lines_of(records)
    outcomes: list[dict] = [not_sent("NotifyFailed", "not written")] * len(records)
    try:
        written = storage.add_to_file(target, lines, retry)
        error_text = None
    except objects.PartialWrite as partial:
        written, error_text = partial.lines_written, partial.reason
    except Exception as error:  # noqa: BLE001 - a target, whatever it does, never fails the job
        written, error_text = 0, error.message if isinstance(error, SnapshotError) else type(error).__name__
    for n, index in enumerate(order):
        outcomes[index] = (
            sent(records[index])
            if n < written
            else not_sent("NotifyFailed", f"writing the messages file failed: {error_text}")
        )
    if error_text:
        log.warning("notifications to %s failed after %d of %d: %s", redact(target), written, len(records), error_text)
    return outcomes
