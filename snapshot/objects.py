"""What every storage scheme shares: object names, the counting reader, the retry policy.

The schemes themselves live beside this module (`snapshot.localfs`, `snapshot.gcs`), and
`snapshot.storage` picks one per bucket; nothing here imports them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Protocol

from snapshot import errors
from snapshot.errors import SnapshotError

MAX_NAME_BYTES = 1024
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,221}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket_name(bucket: str, field: str) -> None:
    if not _BUCKET.fullmatch(bucket):
        raise SnapshotError(
            errors.INVALID_PARAMETER,
            f"{field} must be letters, digits, '.', '_' or '-' (starting with a letter or digit)",
        )


_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_IP = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_GOOGLE = re.compile(r"g[o0]{2}g(?:l|1)e")


def check_gcs_location(location: str, field: str) -> None:
    """Refuse, before any request, what GCS itself would refuse: a bucket name against its
    rules (3-63 characters of a-z, 0-9, '-', '_' and '.', or up to 222 in dot-separated parts
    of at most 63; a letter or digit at each end; not an IP address; no 'goog' prefix and no
    'google'), and an object name over 1,024 bytes."""
    bucket, _, name = location[len("gs://") :].partition("/")
    if (
        not _GCS_BUCKET.fullmatch(bucket)
        or any(len(part) > 63 for part in bucket.split("."))
        or (len(bucket) > 63 and "." not in bucket)
        or ".." in bucket
        or _IP.fullmatch(bucket)
        or bucket.startswith("goog")
        or _GOOGLE.search(bucket)
    ):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field}: {bucket!r} is not a valid GCS bucket name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise SnapshotError(
            errors.INVALID_PARAMETER, f"{field} is longer than {MAX_NAME_BYTES} bytes in its GCS bucket"
        )


def check_object_name(name: str, field: str) -> None:
    """Reject a name that is malformed or would leave its bucket."""
    if name.startswith("/") or ".." in name.split("/"):
        raise SnapshotError(errors.PERMISSION_DENIED, f"{field} would leave its bucket")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} is longer than {MAX_NAME_BYTES} bytes")
    if _CONTROL.search(name):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} contains a control character")
    if "\\" in name:
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} contains a backslash")
    if any(part in ("", ".") for part in name.split("/")):
        raise SnapshotError(errors.INVALID_PARAMETER, f"{field} has an empty or '.' path component")


class CountingReader(io.RawIOBase):
    """A seekable binary reader that counts the bytes it hands out. `version` tells one
    content of the object from another: a GCS generation, or a local file's size and time."""

    def __init__(self, raw: io.RawIOBase | io.BufferedIOBase, version: str = ""):
        super().__init__()
        self.raw, self.version = raw, version
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer) or 0
        self.bytes_read += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


class Root(Protocol):
    """The objects below one folder or gs:// prefix."""

    def open(self, name: str, version: str | None = None) -> CountingReader: ...

    def write(self, name: str, data: bytes) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Retry:
    """How remote storage calls are retried: exponential backoff, then TransientNetWorkError."""

    attempts: int = 5
    initial_s: float = 0.25
    maximum_s: float = 4.0
    timeout_s: float = 30.0  # per request


def changed() -> SnapshotError:
    return SnapshotError(errors.RESOURCE_CONTENT_BAD, "the input changed during the job")


class PartialWrite(Exception):
    """Appending stopped after `lines_written` whole lines, for `reason`."""

    def __init__(self, lines_written: int, reason: str):
        super().__init__(f"{lines_written} lines written: {reason}")
        self.lines_written, self.reason = lines_written, reason
