"""Where job-end notifications go (docs/operations.md#notifications): each PipelineId's target,
what kind of target it is, and how hard it is tried. Plain settings: the messages and their
sending are snapshot.notify, which only a run that sends imports.

A pipelines file maps a PipelineId to a target: an HTTP(S) URL, a local or gs:// JSON Lines
file, or `pubsub://projects/P/topics/T`. Without one, every message goes to the default JSON
Lines file beside the results. A job without a PipelineId sends no message.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import urllib.parse
from dataclasses import dataclass, field

from snapshot import errors, storage
from snapshot.errors import SnapshotError
from snapshot.spec import Request


class TargetKind(enum.Enum):
    """What a notification target is: each kind is sent its own way."""

    FILE = "file"  # a JSON Lines file, appended to
    HTTP = "http"  # an http(s) URL, POSTed to
    PUBSUB = "pubsub"  # a Pub/Sub topic, published to


@dataclass(frozen=True)
class Delivery:
    """How hard a target is tried: attempts with exponential backoff, each bounded as a whole
    by `timeout_s`; up to `concurrency` sends at once; after `down_after` messages in a row
    fail, the target is down for the rest of the run and its messages fail at once."""

    attempts: int = 3
    initial_s: float = 0.5
    timeout_s: float = 5.0
    concurrency: int = 16
    down_after: int = 5


@dataclass(frozen=True)
class Targets:
    """Where each PipelineId's messages go."""

    default: str  # the JSON Lines file used without a pipelines file
    pipelines: dict[str, str] | None = None  # PipelineId -> target, from the pipelines file
    delivery: Delivery = field(default_factory=Delivery)
    staging: str | None = None  # a folder where messages to files wait for delivery (pipeline.delivery)
    down: frozenset[str] = frozenset()  # targets found down earlier in the run: not tried again

    @classmethod
    def from_file(cls, default: str, pipelines_file: str | None, delivery: Delivery = Delivery()) -> Targets:
        pipelines = None
        if pipelines_file:
            pipelines = storage.load_json(pipelines_file, "pipelines")
            if not all(isinstance(v, str) for v in pipelines.values()):
                raise ValueError(f"the pipelines file {pipelines_file} must map PipelineIds to target strings")
            for target in pipelines.values():
                try:
                    kind(target)
                except ValueError as error:
                    raise ValueError(f"the pipelines file {pipelines_file}: {error}") from None
            pipelines = {pipeline: _absolute(target) for pipeline, target in pipelines.items()}
        return cls(_absolute(default), pipelines, delivery)

    def check(self, request: Request) -> None:
        """Refuse, before any capture work, a PipelineId the pipelines file does not list."""
        pipeline_id = request.pipeline_id
        if pipeline_id and self.pipelines is not None and pipeline_id not in self.pipelines:
            raise SnapshotError(errors.INVALID_PARAMETER, f"PipelineId {pipeline_id!r} is not a known pipeline")

    def files(self) -> list[str]:
        """The JSON Lines targets."""
        every = {self.default} if self.pipelines is None else set(self.pipelines.values())
        return sorted(target for target in every if kind(target) is TargetKind.FILE)

    def target(self, pipeline_id: str) -> str | None:
        """The target of a job's message; None when the job has no PipelineId."""
        if not pipeline_id:
            return None
        return self.default if self.pipelines is None else self.pipelines.get(pipeline_id)


def kind(target: str) -> TargetKind:
    """What a target is; a scheme is read in any case (`HTTPS://`), as URLs are."""
    if target.lower().startswith(("http://", "https://")):
        return TargetKind.HTTP
    if target.lower().startswith("pubsub://projects/"):
        return TargetKind.PUBSUB
    if target.lower().endswith(".jsonl"):
        return TargetKind.FILE
    raise ValueError(
        "a notification target must be an http(s) URL, pubsub://projects/P/topics/T or a .jsonl file: " + redact(target)
    )


def _absolute(target: str) -> str:
    """A local file target as an absolute path: one file, however it is spelled."""
    return os.path.abspath(target) if kind(target) is TargetKind.FILE and "://" not in target else target


def staged_name(target: str) -> str:
    """The name of a target's staged messages: the same for the same target."""
    return hashlib.sha256(target.encode("utf-8", "surrogatepass")).hexdigest()[:16] + ".jsonl"


def redact(url: str) -> str:
    """The URL (or any target) without its user, password, query and fragment, whatever the
    scheme's case: fit for a message or a log line. The one place a target is made printable."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        return "(an invalid URL)"
    if not parts.netloc:  # not scheme://host: drop whatever looks like a user or a query
        return re.sub(r"[^/@]*@", "", url.split("?", 1)[0].split("#", 1)[0])
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
