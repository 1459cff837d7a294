"""Google Cloud Storage roots: ranged reads, single-upload writes, retries and error codes.

Only the public JSON API is used (through google-cloud-storage), so any GCS server works;
`STORAGE_EMULATOR_HOST` points the client at a local one. Retries are api_core's `Retry`,
passed to each client call, with a predicate that retries transient failures up to
`Retry.attempts` per request (api_core bounds retries by a deadline; the attempts are what
an error message counts). Reads are the client's own `BlobReader`, wrapped to count bytes.
"""

from __future__ import annotations

import hashlib
import http
import http.client
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
from google.api_core import exceptions as api
from google.api_core import retry as api_retry
from google.auth import exceptions as auth_errors
from google.cloud import storage
from google.cloud.storage.exceptions import InvalidResponse

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.objects import CountingReader, Retry, changed, check_gcs_location, check_object_name

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20  # bytes fetched per ranged GET; a seek outside them fetches anew
APPEND_TAG = "snapshot-append"  # the custom metadata an append's tag is written under

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
_TRANSIENT_STATUS = {
    http.HTTPStatus.TOO_MANY_REQUESTS,
    http.HTTPStatus.REQUEST_TIMEOUT,
    http.HTTPStatus.INTERNAL_SERVER_ERROR,
    http.HTTPStatus.BAD_GATEWAY,
    http.HTTPStatus.SERVICE_UNAVAILABLE,
    http.HTTPStatus.GATEWAY_TIMEOUT,
}


def transient(error: BaseException) -> bool:
    """Whether a failed request may succeed when made again."""
    if isinstance(error, InvalidResponse):  # the upload and download layer's own bad status
        return error.response.status_code in _TRANSIENT_STATUS
    return isinstance(error, _TRANSIENT)


class Attempts:
    """A predicate for api_core's Retry: a transient failure is retried until `limit`
    attempts have failed. `reset()` gives the next request the whole budget."""

    def __init__(self, limit: int):
        self.limit, self.failed = limit, 0

    def __call__(self, error: BaseException) -> bool:
        if not transient(error):
            return False
        self.failed += 1
        return self.failed < self.limit

    def reset(self) -> None:
        self.failed = 0


def policy(retry: Retry, attempts: Attempts, what: str) -> api_retry.Retry:
    """api_core's Retry for one request (or one reader's requests) under `retry`."""

    def warn(error: Exception) -> None:
        log.warning("%s: attempt %d failed (%s); retrying", what, attempts.failed, type(error).__name__)

    return api_retry.Retry(
        predicate=attempts,
        initial=retry.initial_s,
        maximum=retry.maximum_s,
        multiplier=2.0,
        timeout=None,  # bounded by the attempts and the timeout of each request
        on_error=warn,
    )


def coded(error: Exception, what: str, attempts: Attempts) -> Exception:
    """The coded error of a failed request; any other exception as it is."""
    if isinstance(error, api.NotFound):
        return SnapshotError(errors.RESOURCE_NOT_FOUND, f"{what}: not found")
    if isinstance(error, (api.Forbidden, api.Unauthorized)):
        return SnapshotError(errors.PERMISSION_DENIED, f"{what}: access denied")
    if isinstance(error, api.PreconditionFailed):  # only reads ask for a generation: it is no longer the live one
        return changed()
    if transient(error):
        return SnapshotError(
            errors.TRANSIENT_NETWORK_ERROR,
            f"{what}: storage kept failing after {max(attempts.failed, 1)} attempts ({type(error).__name__})",
        )
    return error


def call(what: str, action: Callable[[api_retry.Retry], T], retry: Retry) -> T:
    """`action(policy)`: one storage request, made with a retry policy of its own."""
    attempts = Attempts(retry.attempts)
    try:
        return action(policy(retry, attempts, what))
    except Exception as error:  # noqa: BLE001 - mapped to its code, or raised as it is
        raise coded(error, what, attempts) from None


def unless_refused(
    action: Callable[[api_retry.Retry], T], *refusals: type[Exception]
) -> Callable[[api_retry.Retry], T | None]:
    """`action`, giving None instead when its precondition failed (HTTP 412, never retried: it is
    not transient) or one of `refusals` was raised."""

    caught: tuple[type[Exception], ...] = (api.PreconditionFailed, *refusals)

    def conditional(retry: api_retry.Retry) -> T | None:
        try:
            return action(retry)
        except caught:
            return None

    return conditional


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


@dataclass(frozen=True)
class Versioned:
    """One generation of an object: its bytes, its generation number and its custom metadata."""

    data: bytes
    generation: int
    metadata: dict[str, str]


class GcsRoot:
    """Objects below gs://bucket[/prefix].

    Args:
        location: gs://bucket, or gs://bucket/prefix.
        role: a role of the roles file (a key file or an account to impersonate); None for
            the default credentials.
        retry: how requests are retried and how long each may take.
    """

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
        call(what, lambda retry: blob.reload(timeout=self.retry.timeout_s, retry=retry), self.retry)
        if version is not None and str(blob.generation) != version:
            raise changed()
        attempts = Attempts(self.retry.attempts)
        reader = blob.open(
            "rb",
            chunk_size=READ_CHUNK,
            retry=policy(self.retry, attempts, what),
            timeout=self.retry.timeout_s,
            raw_download=True,
            if_generation_match=blob.generation,
        )
        return BlobBytes(reader, str(blob.generation), what, attempts)

    def close(self) -> None:
        self.client.close()

    def write(self, name: str, data: bytes) -> str:
        blob = self.bucket.blob(self._blob_name(name))
        call(
            f"writing {name!r}",
            lambda retry: blob.upload_from_string(
                data, content_type=_content_type(name), timeout=self.retry.timeout_s, retry=retry
            ),
            self.retry,
        )
        return f"gs://{self.bucket_name}/{blob.name}"

    def read_versioned(self, name: str) -> Versioned | None:
        """The live generation of an object, or None when there is none."""
        blob_name, what = self._blob_name(name), f"reading {name!r}"
        for _ in range(10):
            blob = call(
                what,
                lambda retry: self.bucket.get_blob(blob_name, timeout=self.retry.timeout_s, retry=retry),
                self.retry,
            )
            if blob is None:
                return None
            generation, metadata = blob.generation, dict(blob.metadata or {})  # a download resets them

            def download(retry: api_retry.Retry, blob: storage.Blob = blob, generation: int = generation) -> bytes:
                return blob.download_as_bytes(
                    raw_download=True, if_generation_match=generation, timeout=self.retry.timeout_s, retry=retry
                )

            data = call(what, unless_refused(download, api.NotFound), self.retry)
            if data is not None:
                return Versioned(data, generation, metadata)
            # replaced or deleted between the two requests: read what is live now
        raise SnapshotError(errors.TRANSIENT_NETWORK_ERROR, f"{what}: the object kept changing while being read")

    def write_if(
        self, name: str, data: bytes, if_generation: int, metadata: dict[str, str] | None = None
    ) -> int | None:
        """Write the object on a condition: `if_generation` 0, only if it does not exist; n > 0,
        only if its live generation is n. The new generation, or None when the condition failed
        (HTTP 412; also when a retried request's first attempt had landed: the live generation
        tells)."""
        blob = self.bucket.blob(self._blob_name(name))
        if metadata is not None:
            blob.metadata = metadata
        return self._upload(f"writing {name!r}", blob, data, if_generation)

    def delete_if(self, name: str, if_generation: int | None = None) -> bool:
        """Delete the object (only that generation, when given). False when it was not there or
        the condition failed."""
        blob = self.bucket.blob(self._blob_name(name))
        return self._done(
            f"deleting {name!r}",
            lambda retry: blob.delete(if_generation_match=if_generation, timeout=self.retry.timeout_s, retry=retry),
            api.NotFound,
        )

    def append(self, name: str, data: bytes, tag: str, if_generation: int) -> int | None:
        """The object's content followed by `data`, as a new generation whose custom metadata is
        {"snapshot-append": tag}. `if_generation` 0: the object must not exist, and is created
        with `data`. n > 0: its live generation must be n; `data` is uploaded as a temporary
        object beside it (named by the tag: `part_of`), the two are composed into it on that
        condition, and the temporary one is deleted whatever happens. The new generation, or
        None when the condition failed (HTTP 412)."""
        metadata = {APPEND_TAG: tag}
        if if_generation == 0:
            return self.write_if(name, data, 0, metadata)
        what = f"appending to {name!r}"
        target = self.bucket.blob(self._blob_name(name))
        part = self.bucket.blob(self._blob_name(self.part_of(name, tag)))
        try:
            self._upload(what, part, data, None)
            target.metadata, target.content_type = metadata, _content_type(name)
            composed = self._done(
                what,
                lambda retry: target.compose(
                    [self.bucket.blob(target.name), part],
                    if_generation_match=if_generation,
                    timeout=self.retry.timeout_s,
                    retry=retry,
                ),
                api.NotFound,  # the object is gone: n is not its live generation either
            )
            return target.generation if composed else None
        finally:
            try:
                self._done(
                    f"deleting {part.name!r}",
                    lambda retry: part.delete(timeout=self.retry.timeout_s, retry=retry),
                    api.NotFound,
                )
            except SnapshotError as error:
                log.warning("%s: the temporary object stays (%s)", what, error)

    @staticmethod
    def part_of(name: str, tag: str) -> str:
        """The temporary object of an append: the same for the same tag, so that an append
        stopped before it could delete it is cleared by the one that takes it over."""
        return f"{name}.append-{hashlib.sha256(tag.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"

    def _upload(self, what: str, blob: storage.Blob, data: bytes, if_generation: int | None) -> int | None:
        """One upload of `blob` (on `ifGenerationMatch`, when given): its new generation, or None
        when the condition failed."""
        uploaded = self._done(
            what,
            lambda retry: blob.upload_from_string(
                data,
                content_type=_content_type(blob.name),
                if_generation_match=if_generation,
                timeout=self.retry.timeout_s,
                retry=retry,
            ),
        )
        return blob.generation if uploaded else None

    def _done(self, what: str, action: Callable[[api_retry.Retry], object], *refusals: type[Exception]) -> bool:
        """`call(what, action)`; False, instead of an error, when its precondition failed or it
        raised one of `refusals`."""

        def done(retry: api_retry.Retry) -> bool:
            action(retry)
            return True

        return call(what, unless_refused(done, *refusals), self.retry) is not None

    def _blob_name(self, name: str) -> str:
        check_object_name(name, "Object")
        blob_name = f"{self.prefix}/{name}" if self.prefix else name
        check_gcs_location(f"gs://{self.bucket_name}/{blob_name}", "Object")
        return blob_name


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class BlobBytes(CountingReader):
    """A BlobReader that counts the bytes it hands out. Each read, at most one ranged GET,
    gets the whole retry budget, and its failure its code."""

    def __init__(self, reader, version: str, what: str, attempts: Attempts):
        super().__init__(reader, version)
        self.what, self.attempts = what, attempts

    def readinto(self, buffer) -> int:
        self.attempts.reset()
        try:
            return super().readinto(buffer)
        except Exception as error:  # noqa: BLE001 - mapped to its code, or raised as it is
            raise coded(error, self.what, self.attempts) from None
