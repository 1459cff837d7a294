"""Buckets (SPEC.md section 5): safe object names, and local bucket roots with atomic writes.

Bucket `B` is the folder `<root>/B/`. Names are checked before any I/O; a resolved path
must stay inside its bucket folder even through symlinks; a write goes to a temporary file
in the target folder and is renamed into place, so nobody ever sees half a JPG.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

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


class LocalBuckets:
    """Buckets as folders below one root directory."""

    def __init__(self, root: str):
        self.root = Path(root).absolute()

    def input_path(self, bucket: str, name: str) -> str:
        """The local path of an existing input object."""
        path = self._inside(bucket, name)
        if not path.is_file():
            raise SnapshotError(errors.RESOURCE_NOT_FOUND, f"object {name!r} not found in bucket {bucket!r}")
        return str(path)

    def write(self, bucket: str, name: str, data: bytes) -> str:
        """Write an object atomically and return its URL."""
        path = self._inside(bucket, name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._inside(bucket, name)  # the folders just made must not lead elsewhere
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
            raise SnapshotError(errors.PERMISSION_DENIED, f"bucket {bucket!r} refused writing {name!r}") from None
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise SnapshotError(errors.INVALID_PARAMETER,
                                f"{name!r} clashes with an existing object or folder in bucket {bucket!r}") from None
        return self.url(bucket, name)

    def url(self, bucket: str, name: str) -> str:
        return (self.root / bucket / name).as_uri()

    def _inside(self, bucket: str, name: str) -> Path:
        """The path of `name` in `bucket`, refusing anything that resolves outside the bucket."""
        check_bucket_name(bucket, "Bucket")
        check_object_name(name, "Object")
        bucket_dir = (self.root / bucket).resolve()
        path = bucket_dir / name
        if not path.parent.resolve().is_relative_to(bucket_dir) or path.is_symlink():
            raise SnapshotError(errors.PERMISSION_DENIED, f"{name!r} would leave bucket {bucket!r}")
        return path
