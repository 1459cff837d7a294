"""What a job is, without Beam: a manifest line, parsed into a request or a coded error.

A job then goes through `snapshot.tasks` (planned with the other jobs on its input, captured
in shared tasks), run under time limits by `snapshot.guarded`, and `snapshot.assemble` makes
its one result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from snapshot import errors, spec
from snapshot.errors import SnapshotError
from snapshot.spec import Echo, Request

log = logging.getLogger(__name__)

LINES_PER_GROUP = 5000  # manifest lines whose jobs on one input are planned together


@dataclass(frozen=True)
class ManifestLine:
    source: str  # the manifest file's path, relative to the folder its pattern names
    number: int  # 1-based line number
    text: str  # bytes that are not UTF-8 are replaced with U+FFFD ...
    utf8: bool = True  # ... and this is False
    occurrence: int = 1  # 1 for the first line of this text in its file, 2 for the next, ...

    @property
    def job_id(self) -> str:
        """Deterministic: the same request in the same manifest file gets the same id on every
        run, wherever the line moves; a repeated line is told apart by its occurrence."""
        key = f"{self.source}\n{self.occurrence}\n{self.text}"
        return hashlib.md5(key.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    created: str
    echo: Echo
    request: Request | None = None  # exactly one of these two is set
    error: SnapshotError | None = None
    warnings: tuple[str, ...] = ()  # what parsing noticed but the API ignores (unknown keys)

    @property
    def parsed(self) -> Request:
        """The request of a job that parsed: every job that reaches planning."""
        if self.request is None:
            raise ValueError(f"job {self.id} has no request: {self.error}")
        return self.request


def read_job(line: ManifestLine, created: str) -> Job:
    """Parse a manifest line. Total: any failure becomes the line's coded error."""
    source = f"{line.source}:{line.number}"
    if not line.utf8:
        return Job(
            line.job_id,
            source,
            created,
            Echo(),
            error=SnapshotError(errors.JSON_FORMAT_INVALID, "the manifest line is not UTF-8"),
        )
    echo = spec.decode_echo(line.text)
    warnings: tuple[str, ...] = ()
    try:
        warnings = spec.unknown_keys(line.text)
        request = spec.parse_request(line.text)
        return Job(line.job_id, source, created, echo, request=request, warnings=warnings)
    except SnapshotError as error:
        return Job(line.job_id, source, created, echo, error=error, warnings=warnings)
    except Exception:  # a line that breaks the parser is still that line's failure
        log.exception("reading line %s failed", source)
        return Job(
            line.job_id,
            source,
            created,
            echo,
            error=SnapshotError(errors.INVALID_PARAMETER, "the request cannot be read"),
        )


def admit(job: Job, check: Callable[[Request], None]) -> Job:
    """`job`, or, when the deployment's `check` refuses its request (a PipelineId it does not
    know, say), the same job failed with the check's error."""
    if job.request is None:
        return job
    try:
        check(job.request)
    except SnapshotError as error:
        return replace(job, request=None, error=error)
    return job


def input_bucket(line: ManifestLine) -> str | None:
    """The Input bucket a line names, read leniently (for checks before a run), or None."""
    bucket = (spec.decode_echo(line.text).input or {}).get("Bucket")
    return bucket if isinstance(bucket, str) else None


def input_key(job: Job) -> str:
    """Jobs with the same key read the same object with the same credentials, and stand in the
    same block of LINES_PER_GROUP lines of their manifest: a hot input's jobs form groups of
    bounded size (each probes the input once), never one group of the whole batch."""
    source = job.parsed.input
    manifest, _, line = job.source.rpartition(":")
    return json.dumps([source.bucket, source.name, source.role_arn, manifest, int(line) // LINES_PER_GROUP])
