"""Google Cloud Storage roots: ranged reads, single-upload writes, retries and error codes.

Only the public JSON API is used (through google-cloud-storage), so any GCS server works;
`STORAGE_EMULATOR_HOST` points the client at a local one.
"""

from __future__ import annotations

import http.client
import io
import logging
import mimetypes
import time
from collections.abc import Callable
from typing import TypeVar

import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth_errors
from google.cloud import storage

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.objects import CountingReader, Retry, changed, check_gcs_location, check_object_name

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20  # bytes fetched per ranged GET; a seek outside them fetches anew

T = TypeVar("T")

_TRANSIENT = (
    api.TooManyRequests,
    api.InternalServerError,
    api.BadGateway,
    api.ServiceUnavailable,
    api.GatewayTimeout,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    auth_errors.TransportError,
)


def call(what: str, action: Callable[[], T], retry: Retry) -> T:
    """Run one storage request, retrying transient failures with exponential backoff."""
    delay = retry.initial_s
    for attempt in range(1, retry.attempts + 1):
        try:
            return action()
        except api.NotFound:
            raise SnapshotError(errors.RESOURCE_NOT_FOUND, f"{what}: not found") from None
        except (api.Forbidden, api.Unauthorized):
            raise SnapshotError(errors.PERMISSION_DENIED, f"{what}: access denied") from None
        except api.PreconditionFailed:  # only reads ask for a generation: it is no longer the live one
            raise changed() from None
        except _TRANSIENT as error:
            if attempt == retry.attempts:
                raise SnapshotError(
                    errors.TRANSIENT_NETWORK_ERROR,
                    f"{what}: storage kept failing after {attempt} attempts ({type(error).__name__})",
                ) from None
            log.warning("%s: attempt %d failed (%s); retrying in %.2f s", what, attempt, type(error).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, retry.maximum_s)
    raise AssertionError("unreachable")


def credentials_for(role: dict | None):
    """google-auth credentials of a role from the roles file; None for the default ones."""
    if not role:
        return None
    if "key_file" in role:
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_file(
            role["key_file"], scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
        )
    if "impersonate" in role:
        import google.auth
        from google.auth import impersonated_credentials

        source, _ = google.auth.default()
        return impersonated_credentials.Credentials(
            source_credentials=source,
            target_principal=role["impersonate"],
            target_scopes=["https://www.googleapis.com/auth/devstorage.read_write"],
        )
    raise ValueError("a role needs key_file or impersonate")


class GcsRoot:
    """Objects below gs://bucket[/prefix]."""

    def __init__(self, location: str, role: dict | None, retry: Retry):
        bucket, _, prefix = location[len("gs://") :].partition("/")
        self.bucket_name, self.prefix, self.retry = bucket, prefix.strip("/"), retry
        self.client = storage.Client(credentials=credentials_for(role))
        self.bucket = self.client.bucket(bucket)

    def open(self, name: str, version: str | None = None) -> CountingReader:
        """A reader of the object; with `version`, of that generation only (every ranged read
        is made on the condition that it is still the live one, so a replacement mid-read
        fails instead of mixing two contents)."""
        blob = self.bucket.blob(self._blob_name(name))
        what = f"reading {name!r}"
        call(what, lambda: blob.reload(timeout=self.retry.timeout_s, retry=None), self.retry)
        if version is not None and str(blob.generation) != version:
            raise changed()
        return CountingReader(RangeReader(blob, blob.size, what, self.retry), str(blob.generation))

    def close(self) -> None:
        self.client.close()

    def write(self, name: str, data: bytes) -> str:
        blob = self.bucket.blob(self._blob_name(name))
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        call(
            f"writing {name!r}",
            lambda: blob.upload_from_string(data, content_type=content_type, timeout=self.retry.timeout_s, retry=None),
            self.retry,
        )
        return f"gs://{self.bucket_name}/{blob.name}"

    def _blob_name(self, name: str) -> str:
        check_object_name(name, "Object")
        blob_name = f"{self.prefix}/{name}" if self.prefix else name
        check_gcs_location(f"gs://{self.bucket_name}/{blob_name}", "Object")
        return blob_name


class RangeReader(io.RawIOBase):
    """A seekable reader of one object that fetches byte ranges, READ_CHUNK at a time."""

    def __init__(self, blob, size: int, what: str, retry: Retry):
        super().__init__()
        self.blob, self.size, self.what, self.retry = blob, size, what, retry
        self.position = 0
        self.chunk_start, self.chunk = 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.position >= self.size:
            return 0
        offset = self.position - self.chunk_start
        if not 0 <= offset < len(self.chunk):
            self._fetch(self.position, max(len(buffer), READ_CHUNK))
            offset = 0
        count = min(len(buffer), len(self.chunk) - offset)
        buffer[:count] = self.chunk[offset : offset + count]
        self.position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def _fetch(self, start: int, length: int) -> None:
        end = min(self.size, start + length) - 1  # inclusive
        self.chunk = call(
            self.what,
            lambda: self.blob.download_as_bytes(
                start=start,
                end=end,
                raw_download=True,
                checksum=None,
                timeout=self.retry.timeout_s,
                retry=None,
                if_generation_match=self.blob.generation,
            ),
            self.retry,
        )
        self.chunk_start = start
