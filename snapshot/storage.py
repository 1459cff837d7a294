"""Buckets (SPEC.md section 5): safe names, and where each bucket lives.

A bucket is a local folder or a `gs://` root. By default bucket `B` is `<bucket_root>/B/`; a
bucket map sends one bucket (`"B": ROOT`: object `N` is `ROOT/N`) or every other bucket
(`"*": ROOT`: object `N` of bucket `B` is `ROOT/B/N`) elsewhere. Names are checked before
any I/O; a local path must stay inside its bucket folder even through symlinks; a write is
atomic (a temporary file renamed into place locally, a single upload on GCS).
"""
from __future__ import annotations

import io
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from snapshot import errors
from snapshot.errors import SnapshotError

MAX_NAME_BYTES = 1024
FILE_MODE = 0o644  # what a plain open() would give; mkstemp alone makes 0600
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,221}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket_name(bucket: str, field: str) -> None:
    if not _BUCKET.fullmatch(bucket):
        raise SnapshotError(errors.INVALID_PARAMETER,
                            f"{field} must be letters, digits, '.', '_' or '-' (starting with a letter or digit)")


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
    """A seekable binary reader that counts the bytes it hands out."""

    def __init__(self, raw: BinaryIO):
        super().__init__()
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.bytes_read += count or 0
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()


class LocalRoot:
    """Objects as files below one folder."""

    def __init__(self, folder: str):
        self.folder = Path(folder).absolute()

    def open(self, name: str) -> CountingReader:
        path = self._inside(name)
        try:
            stream = open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                stream.close()
                raise SnapshotError(errors.RESOURCE_CONTENT_BAD, f"object {name!r} is not a regular file")
            return CountingReader(stream)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise SnapshotError(errors.RESOURCE_NOT_FOUND, f"object {name!r} not found") from None
        except PermissionError:
            raise SnapshotError(errors.PERMISSION_DENIED, f"reading {name!r} is not allowed") from None

    def write(self, name: str, data: bytes) -> str:
        path = self._inside(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._inside(name)  # the folders just made must not lead elsewhere
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
            try:
                os.fchmod(fd, FILE_MODE)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except PermissionError:
            raise SnapshotError(errors.PERMISSION_DENIED, f"writing {name!r} is not allowed") from None
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise SnapshotError(errors.INVALID_PARAMETER,
                                f"{name!r} clashes with an existing object or folder") from None
        return path.as_uri()

    def _inside(self, name: str) -> Path:
        """The path of `name`, refusing anything that resolves outside the folder."""
        check_object_name(name, "Object")
        folder = self.folder.resolve()
        path = folder / name
        if not path.parent.resolve().is_relative_to(folder) or path.is_symlink():
            raise SnapshotError(errors.PERMISSION_DENIED, f"{name!r} would leave its bucket")
        return path


@dataclass(frozen=True)
class Retry:
    """How remote storage calls are retried: exponential backoff, then TransientNetWorkError."""
    attempts: int = 5
    initial_s: float = 0.25
    maximum_s: float = 4.0
    timeout_s: float = 30.0   # per request


@dataclass
class Buckets:
    """Resolves a bucket (and the RoleArn of a request) to where its objects live."""
    root: str = "./buckets"
    bucket_map: dict[str, str] = field(default_factory=dict)
    roles: dict[str, dict] = field(default_factory=dict)
    retry: Retry = Retry()

    def __post_init__(self):
        self._roots: dict[tuple[str, str], object] = {}
        if not _is_gcs(self.root):
            self.root = str(Path(self.root).absolute())

    @classmethod
    def from_files(cls, root: str, bucket_map_file: str | None = None, roles_file: str | None = None,
                   retry: Retry = Retry()) -> Buckets:
        return cls(root, _load_json(bucket_map_file, "bucket map"), _load_json(roles_file, "roles"), retry)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_roots"] = {}  # clients are made again where the object lands
        return state

    def check_role(self, role_arn: str, field_name: str) -> None:
        if role_arn and role_arn not in self.roles:
            raise SnapshotError(errors.ENTITY_NOT_EXIST_ROLE, f"{field_name} {role_arn!r} is not a known role")

    def open(self, ref) -> CountingReader:
        """A seekable reader of the object `ref` (bucket, name, role_arn); the caller closes it."""
        return self._root(ref.bucket, ref.role_arn).open(ref.name)

    def write(self, where, name: str, data: bytes) -> str:
        """Write object `name` atomically into the bucket of `where` (bucket, role_arn); its URL."""
        return self._root(where.bucket, where.role_arn).write(name, data)

    def _root(self, bucket: str, role_arn: str):
        check_bucket_name(bucket, "Bucket")
        key = (bucket, role_arn)
        if key not in self._roots:
            if bucket in self.bucket_map:
                location = self.bucket_map[bucket]
            else:
                location = _join(self.bucket_map.get("*", self.root), bucket)
            if _is_gcs(location):
                from snapshot import (
                    gcs,  # google-cloud-storage only where a gs:// root is used
                )
                self._roots[key] = gcs.GcsRoot(location, self.roles.get(role_arn), self.retry)
            else:
                self._roots[key] = LocalRoot(location)
        return self._roots[key]


def add_to_file(location: str, data: bytes, retry: Retry = Retry()) -> str:
    """Append to a local file (one write, O_APPEND); a gs:// object is replaced instead, since
    GCS objects cannot be appended to. Its URL."""
    if _is_gcs(location):
        from snapshot import gcs
        folder, _, name = location.rpartition("/")
        return gcs.GcsRoot(folder, None, retry).write(name, data)
    path = Path(location).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path.as_uri()


def _is_gcs(location: str) -> bool:
    return location.startswith("gs://")


def _join(root: str, bucket: str) -> str:
    """Bucket `bucket` below a root of buckets; the root `gs://` is GCS itself."""
    if not _is_gcs(root):
        return str(Path(root) / bucket)
    below = root[len("gs://"):].strip("/")
    return f"gs://{below}/{bucket}" if below else f"gs://{bucket}"


def _load_json(path: str | None, what: str) -> dict:
    if not path:
        return {}
    with open(path, encoding="utf-8") as stream:
        value = json.load(stream)
    if not isinstance(value, dict):
        raise ValueError(f"the {what} file {path} must hold a JSON object")
    return value
