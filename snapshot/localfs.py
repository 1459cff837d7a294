"""Objects as files below a local folder, walked without ever following a symbolic link."""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import itertools
import os
import secrets
import stat
from pathlib import Path

from snapshot import errors
from snapshot.errors import SnapshotError
from snapshot.objects import CountingReader, PartialWrite, changed, check_object_name

FILE_MODE = 0o644  # what a plain open() would give; mkstemp alone makes 0600


class LocalRoot:
    """Objects as files below one folder.

    Every path is walked one component at a time from a descriptor of the folder, with
    O_NOFOLLOW, and files are opened, created and renamed relative to the descriptor of
    their own folder: no path is resolved twice, so a symbolic link swapped in meanwhile
    cannot send a read or a write outside. Symbolic links below the folder are refused.

    Args:
        folder: the bucket's folder; objects are files below it.
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


def append_lines(path: str, lines: list[bytes], intent: dict | None = None, note=None) -> int:
    """Append `lines` (each ending in a newline) to a local regular file, under its flock, so
    that our other appenders wait their turn. The number of lines written (all of them), or
    PartialWrite: the file then ends at the last line written whole.

    Once: `note(intent)` is called before the bytes go down, with where they go; given that
    intent again (after a run that was stopped), the lines already there are not written twice."""
    try:
        where = Path(path).absolute()
        where.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(where, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, FILE_MODE)
    except OSError as error:
        raise PartialWrite(0, error.strerror or type(error).__name__) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PartialWrite(0, "not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = _already_there(fd, lines, intent) if intent else 0
        if done == len(lines):
            return done
        start = os.fstat(fd).st_size
        if note is not None:
            note({"offset": start, "from": done})
        data = b"".join(lines[done:])
        ends = list(itertools.accumulate(len(line) for line in lines[done:]))
        written = 0
        try:
            view = memoryview(data)
            while written < len(data):
                written += os.write(fd, view[written:])
        except OSError as error:
            whole = bisect.bisect_right(ends, written)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start + (ends[whole - 1] if whole else 0))  # no torn line stays
            raise PartialWrite(done + whole, error.strerror or type(error).__name__) from None
        return len(lines)
    finally:
        os.close(fd)


def _already_there(fd: int, lines: list[bytes], intent: dict) -> int:
    """How many of `lines` an earlier append with this intent left whole in the file (those
    before `from`, and those found at `offset` after them); a torn line after them is cut."""
    done, offset = int(intent["from"]), int(intent["offset"])
    size = os.fstat(fd).st_size
    found = os.pread(fd, size - offset, offset) if 0 <= offset < size else b""
    at = 0
    for line in lines[done:]:
        if found[at : at + len(line)] != line:
            break
        at, done = at + len(line), done + 1
    rest = found[at:]
    if rest and done < len(lines) and lines[done].startswith(rest):  # the torn end of our next line
        os.ftruncate(fd, offset + at)
    return done
