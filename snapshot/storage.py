"""Buckets (docs/manifest.md, Names and buckets; docs/gcs.md): safe names, and where each bucket lives.

A bucket is a local folder or a `gs://` root. By default bucket `B` is `<bucket_root>/B/`; a
bucket map sends one bucket (`"B": ROOT`: object `N` is `ROOT/N`) or every other bucket
(`"*": ROOT`: object `N` of bucket `B` is `ROOT/B/N`) elsewhere. Names are checked before
any I/O; a local path must stay inside its bucket folder even through symlinks; a write is
atomic (a temporary file renamed into place locally, a single upload on GCS).
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import io
import itertools
import json
import os
import re
import secrets
import stat
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

    def __init__(self, raw: BinaryIO, version: str = ""):
        super().__init__()
        self.raw, self.version = raw, version
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
    """Objects as files below one folder.

    Every path is walked one component at a time from a descriptor of the folder, with
    O_NOFOLLOW, and files are opened, created and renamed relative to the descriptor of
    their own folder: no path is resolved twice, so a symbolic link swapped in meanwhile
    cannot send a read or a write outside. Symbolic links below the folder are refused.
    """

    def __init__(self, folder: str):
        self.folder = Path(folder).absolute()

    def close(self) -> None:
        pass

    def open(self, name: str, version: str | None = None) -> CountingReader:
        check_object_name(name, "Object")
        folders, leaf = _split(name)
        try:
            folder = self._folder(folders, create=False)
            try:
                fd = os.open(leaf, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            finally:
                os.close(folder)
            stream = os.fdopen(fd, "rb", buffering=0)
        except OSError as error:
            raise _failure(error, name, writing=False) from None
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            stream.close()
            raise SnapshotError(errors.RESOURCE_CONTENT_BAD, f"object {name!r} is not a regular file")
        found = f"{status.st_size}:{status.st_mtime_ns}"
        if version is not None and found != version:
            stream.close()
            raise changed()
        return CountingReader(stream, found)

    def write(self, name: str, data: bytes) -> str:
        check_object_name(name, "Object")
        folders, leaf = _split(name)
        temporary = f".tmp-{secrets.token_hex(8)}.part"
        try:
            folder = self._folder(folders, create=True)
            try:
                with contextlib.suppress(FileNotFoundError):  # a rename never follows a link: this is for
                    if stat.S_ISLNK(os.stat(leaf, dir_fd=folder, follow_symlinks=False).st_mode):  # the message
                        raise OSError(errno.ELOOP, "a symbolic link", leaf)
                fd = os.open(
                    temporary,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    FILE_MODE,
                    dir_fd=folder,
                )
                try:
                    os.fchmod(fd, FILE_MODE)
                    with os.fdopen(fd, "wb") as out:
                        out.write(data)
                    os.replace(temporary, leaf, src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    os.unlink(temporary, dir_fd=folder)
                    raise
            finally:
                os.close(folder)
        except OSError as error:
            raise _failure(error, name, writing=True) from None
        return (self.folder / name).as_uri()

    def _folder(self, names: list[str], create: bool) -> int:
        """A descriptor of the folder below the bucket's folder that `names` lead to."""
        if create:
            self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in names:
                flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                try:
                    inner = os.open(part, flags, dir_fd=fd)
                except NotADirectoryError:
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise OSError(errno.ELOOP, "a symbolic link", part) from None
                    raise
                except FileNotFoundError:
                    if not create:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    inner = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        return fd


def _split(name: str) -> tuple[list[str], str]:
    *folders, leaf = name.split("/")
    return folders, leaf


def _failure(error: OSError, name: str, writing: bool) -> SnapshotError:
    """The coded error of a failed local read or write of object `name`."""
    code = error.errno
    if code == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
        return SnapshotError(errors.PERMISSION_DENIED, f"{name!r} goes through a symbolic link")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SnapshotError(errors.PERMISSION_DENIED, f"{'writing' if writing else 'reading'} {name!r} is not allowed")
    if code == errno.ENAMETOOLONG:
        if writing:
            return SnapshotError(errors.INVALID_PARAMETER, f"a part of {name!r} is longer than the storage allows")
        return SnapshotError(errors.RESOURCE_NOT_FOUND, f"object {name!r} not found (a part of it is too long)")
    if not writing and code in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return SnapshotError(errors.RESOURCE_NOT_FOUND, f"object {name!r} not found")
    if writing and code in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOTEMPTY):
        return SnapshotError(errors.INVALID_PARAMETER, f"{name!r} clashes with an existing object or folder")
    if writing and code == errno.ENOENT:
        return SnapshotError(errors.INTERNAL_ERROR, f"writing {name!r} failed: its folder was removed meanwhile")
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return SnapshotError(errors.STORAGE_FULL, f"writing {name!r} failed: {os.strerror(code)}")
    raise error


@dataclass(frozen=True)
class Retry:
    """How remote storage calls are retried: exponential backoff, then TransientNetWorkError."""

    attempts: int = 5
    initial_s: float = 0.25
    maximum_s: float = 4.0
    timeout_s: float = 30.0  # per request


@dataclass
class Buckets:
    """Where each bucket lives (and which RoleArns exist): configuration only, which travels
    with the pipeline. `connect()` gives the Storage that reads and writes."""

    root: str = "./buckets"
    bucket_map: dict[str, str] = field(default_factory=dict)
    roles: dict[str, dict] = field(default_factory=dict)
    retry: Retry = Retry()

    def __post_init__(self):
        if not _is_gcs(self.root):
            self.root = str(Path(self.root).absolute())

    @classmethod
    def from_files(
        cls, root: str, bucket_map_file: str | None = None, roles_file: str | None = None, retry: Retry = Retry()
    ) -> Buckets:
        return cls(root, _load_json(bucket_map_file, "bucket map"), _load_json(roles_file, "roles"), retry)

    def connect(self) -> Storage:
        return Storage(self)

    def check_role(self, role_arn: str, field_name: str) -> None:
        if role_arn and role_arn not in self.roles:
            raise SnapshotError(errors.ENTITY_NOT_EXIST_ROLE, f"{field_name} {role_arn!r} is not a known role")

    def location(self, bucket: str, name: str, field: str = "Object") -> str:
        """Where object `name` of `bucket` lives: two names are the same object exactly when
        their locations are equal, whatever the bucket map says. A GCS location is checked
        against GCS's rules."""
        root = self.root_of(bucket)
        if not _is_gcs(root):
            return (Path(root).absolute() / name).as_uri()
        location = f"{root.rstrip('/')}/{name}"
        check_gcs_location(location, field)
        return location

    def root_of(self, bucket: str) -> str:
        """The folder or gs:// root of a bucket."""
        check_bucket_name(bucket, "Bucket")
        if bucket in self.bucket_map:
            return self.bucket_map[bucket]
        return _join(self.bucket_map.get("*", self.root), bucket)


class Storage:
    """Reads and writes the objects of some Buckets, keeping a root (and its GCS client) per
    bucket and role until `close()`."""

    def __init__(self, buckets: Buckets):
        self.buckets = buckets
        self._roots: dict[tuple[str, str], object] = {}

    def open(self, ref, version: str | None = None) -> CountingReader:
        """A seekable reader of the object `ref` (bucket, name, role_arn); the caller closes it.
        With `version` (a reader's `version` from before), the content must not have changed
        since: `ResourceContentBad` if it has."""
        return self._root(ref.bucket, ref.role_arn).open(ref.name, version)

    def write(self, where, name: str, data: bytes) -> str:
        """Write object `name` atomically into the bucket of `where` (bucket, role_arn); its URL."""
        return self._root(where.bucket, where.role_arn).write(name, data)

    def close(self) -> None:
        roots, self._roots = self._roots, {}
        for root in roots.values():
            root.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _root(self, bucket: str, role_arn: str):
        key = (bucket, role_arn)
        if key not in self._roots:
            location = self.buckets.root_of(bucket)
            if _is_gcs(location):
                from snapshot import gcs  # google-cloud-storage only where a gs:// root is used

                self._roots[key] = gcs.GcsRoot(location, self.buckets.roles.get(role_arn), self.buckets.retry)
            else:
                self._roots[key] = LocalRoot(location)
        return self._roots[key]


def changed() -> SnapshotError:
    return SnapshotError(errors.RESOURCE_CONTENT_BAD, "the input changed during the job")


class PartialWrite(Exception):
    """Appending stopped after `lines_written` whole lines, for `reason`."""

    def __init__(self, lines_written: int, reason: str):
        super().__init__(f"{lines_written} lines written: {reason}")
        self.lines_written, self.reason = lines_written, reason


def add_to_file(location: str, lines: list[bytes], retry: Retry = Retry()) -> int:
    """Append `lines` (each ending in a newline) to a local file, writing until every byte is
    down; a gs:// object is replaced instead, since GCS objects cannot be appended to. The
    number of lines written (all of them), or PartialWrite."""
    data = b"".join(lines)
    if _is_gcs(location):
        from snapshot import gcs

        folder, _, name = location.rpartition("/")
        root = gcs.GcsRoot(folder, None, retry)
        try:
            root.write(name, data)
        finally:
            root.close()
        return len(lines)
    ends = list(itertools.accumulate(len(line) for line in lines))
    done = 0
    try:
        path = Path(location).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError as error:
        raise PartialWrite(0, error.strerror or type(error).__name__) from None
    try:
        view = memoryview(data)
        while done < len(data):
            done += os.write(fd, view[done:])
    except OSError as error:
        whole = bisect.bisect_right(ends, done)
        if whole < len(lines) and done > (ends[whole - 1] if whole else 0):
            with contextlib.suppress(OSError):
                os.write(fd, b"\n")  # end the torn line, so that the next message starts on its own
        raise PartialWrite(whole, error.strerror or type(error).__name__) from None
    finally:
        os.close(fd)
    return len(lines)


def _is_gcs(location: str) -> bool:
    return location.startswith("gs://")


def _join(root: str, bucket: str) -> str:
    """Bucket `bucket` below a root of buckets; the root `gs://` is GCS itself."""
    if not _is_gcs(root):
        return str(Path(root) / bucket)
    below = root[len("gs://") :].strip("/")
    return f"gs://{below}/{bucket}" if below else f"gs://{bucket}"


def _load_json(path: str | None, what: str) -> dict:
    if not path:
        return {}
    with open(path, encoding="utf-8") as stream:
        value = json.load(stream)
    if not isinstance(value, dict):
        raise ValueError(f"the {what} file {path} must hold a JSON object")
    return value
