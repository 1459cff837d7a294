"""Buckets: where each bucket lives (docs/contract.md#names-and-buckets, and for GCS
docs/running.md#buckets-on-google-cloud-storage).

A bucket is a local folder or a `gs://` root. By default bucket `B` is `<bucket_root>/B/`; a
bucket map sends one bucket (`"B": ROOT`: object `N` is `ROOT/N`) or every other bucket
(`"*": ROOT`: object `N` of bucket `B` is `ROOT/B/N`) elsewhere. This module dispatches each
bucket to its scheme: `snapshot.localfs` (a local path stays inside its bucket folder even
through symlinks; a write is a temporary file renamed into place) or `snapshot.gcs` (a write
is a single upload). Names are checked before any I/O (`snapshot.objects`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.localfs import LocalRoot, append_lines
from snapshot.objects import (
    CountingReader,
    PartialWrite,
    Retry,
    Root,
    check_bucket_name,
    check_gcs_location,
    check_object_name,
)


class BucketRef(Protocol):
    """Where objects go: a bucket, and the role to reach it with."""

    @property
    def bucket(self) -> str: ...

    @property
    def role_arn(self) -> str: ...


class StoredObject(BucketRef, Protocol):
    """One object of a bucket."""

    @property
    def name(self) -> str: ...


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
        bucket_map = load_json(bucket_map_file, "bucket map")
        for bucket, where in bucket_map.items():
            problem = _map_problem(bucket, where)
            if problem:
                raise ValueError(f"the bucket map {bucket_map_file} maps {bucket!r} to {where!r}: {problem}")
        return cls(root, bucket_map, load_json(roles_file, "roles"), retry)

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

    def any_local(self) -> bool:
        """Some bucket may be a local folder."""
        roots = [*self.bucket_map.values(), *([self.root] if "*" not in self.bucket_map else [])]
        return not all(_is_gcs(root) for root in roots)

    def missing(self, bucket: str, where: bool = True) -> str | None:
        """Why a bucket that objects are read from is not a local folder, or None when it is
        one, lives on GCS, or is not a valid name (which its jobs report themselves). Without
        `where`, the folders are not named: a job's message never shows the worker's paths."""
        try:
            root = self.root_of(bucket)
        except SnapshotError:
            return None
        if _is_gcs(root) or Path(root).is_dir():
            return None
        if bucket in self.bucket_map:
            return f"bucket {bucket!r} is mapped to " + (f"{root}, which is not a folder" if where else "no folder")
        under = f" under {self.bucket_map.get('*', self.root)}" if where else " of the bucket root"
        return f"bucket {bucket!r} is not a folder{under}"


class Storage:
    """Reads and writes the objects of some Buckets, keeping a root (and its GCS client) per
    bucket and role until `close()`.

    Args:
        buckets: where each bucket lives, and the known roles.
    """

    def __init__(self, buckets: Buckets):
        self.buckets = buckets
        self._roots: dict[tuple[str, str], Root] = {}

    def open(self, ref: StoredObject, version: str | None = None) -> CountingReader:
        """A seekable reader of the object `ref` (bucket, name, role_arn); the caller closes it.
        With `version` (a reader's `version` from before), the content must not have changed
        since: `ResourceContentBad` if it has."""
        try:
            return self._root(ref.bucket, ref.role_arn).open(ref.name, version)
        except SnapshotError as error:
            missing = self.buckets.missing(ref.bucket, where=False) if error.code == errors.RESOURCE_NOT_FOUND else None
            if missing:
                raise SnapshotError(errors.RESOURCE_NOT_FOUND, missing) from None
            raise

    def write(self, where: BucketRef, name: str, data: bytes) -> str:
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

    def _root(self, bucket: str, role_arn: str) -> Root:
        key = (bucket, role_arn)
        if key not in self._roots:
            self._roots[key] = connect(
                self.buckets.root_of(bucket), self.buckets.roles.get(role_arn), self.buckets.retry
            )
        return self._roots[key]


def connect(location: str, role: dict | None = None, retry: Retry = Retry()) -> Root:
    """The root of the objects below `location`: a local folder, or a gs:// bucket and prefix."""
    if _is_gcs(location):
        from snapshot import gcs  # google-cloud-storage is imported only where a gs:// root is used

        return gcs.GcsRoot(location, role, retry)
    return LocalRoot(location)


def add_to_file(
    location: str,
    lines: list[bytes],
    retry: Retry = Retry(),
    tag: str = "",
    intent: dict | None = None,
    note: Callable[[dict], None] | None = None,
) -> int:
    """Append `lines` (each ending in a newline) to a JSON Lines file, local or gs://. The
    number of lines written (all of them), or PartialWrite.

    Once, when given the `intent` that `note` was called with by an earlier attempt that was
    stopped: lines already there are not added again. A gs:// object, which cannot be
    appended to, gets a new generation composed of the live one and the lines, on the
    condition that the live one is still the one read (so concurrent appends are not lost);
    `tag` marks the new generation, so that the earlier attempt can be recognised."""
    if not _is_gcs(location):
        return append_lines(location, lines, intent, note)
    from snapshot import gcs

    folder, _, name = location.rpartition("/")
    data, tag = b"".join(lines), tag or secrets.token_hex(8)
    root = gcs.GcsRoot(folder, None, retry)
    try:
        if intent is not None:
            root.delete_if(root.part_of(name, tag))  # what an append stopped half way left
            found = root.read_versioned(name)
            later = found is not None and found.generation != intent["generation"]
            if later and found and (found.metadata.get(gcs.APPEND_TAG) == tag or data in found.data):
                return len(lines)  # the earlier attempt's append went through
        for _ in range(10):
            found = root.read_versioned(name)
            generation = found.generation if found else 0
            if note is not None:
                note({"generation": generation})
            if root.append(name, data, tag, generation):
                return len(lines)
    finally:
        root.close()
    raise PartialWrite(0, "the object kept changing while being appended to")


def _map_problem(bucket: str, where: object) -> str | None:
    """What is wrong with a bucket map's entry, or None: a folder, a gs:// bucket (and prefix)
    that GCS would take, or "gs://" alone, the root of buckets, for "*"."""
    if not isinstance(where, str) or not where.strip():
        return "give a folder or a gs:// bucket"
    if not _is_gcs(where):
        return None
    if where.rstrip("/") == "gs:":
        return None if bucket == "*" else '"gs://" alone is the root of buckets, for "*" only'
    try:
        check_gcs_location(f"{where.rstrip('/')}/x", "its bucket")
        check_object_name(f"{where[len('gs://') :].rstrip('/')}/x".partition("/")[2], "its prefix")
    except SnapshotError as error:
        return error.message
    return None


def _is_gcs(location: str) -> bool:
    return location.startswith("gs://")


def _join(root: str, bucket: str) -> str:
    """Bucket `bucket` below a root of buckets; the root `gs://` is GCS itself."""
    if not _is_gcs(root):
        return str(Path(root) / bucket)
    below = root[len("gs://") :].strip("/")
    return f"gs://{below}/{bucket}" if below else f"gs://{bucket}"


def load_json(path: str | None, what: str) -> dict:
    """The JSON object in the `what` file at `path` ({} without one); ValueError naming the
    file when it cannot be read or holds no object."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as stream:
            value = json.load(stream)
    except OSError as error:
        raise ValueError(f"cannot read the {what} file {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"cannot read the {what} file {path}: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} file {path} must hold a JSON object")
    return value
