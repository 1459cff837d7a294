"""A run of the command as a transaction on its results prefix
(docs/operations.md#runs-and-their-results).

For the prefix DIR/NAME, the results are DIR/NAME-SSSSS-of-NNNNN.avro, and DIR/NAME.runs/ is
the prefix's control folder:

    lease         the one run that may change the prefix (Lease)
    commit.json   which shards are the results: a reader follows it (committed_files)
    RUN_ID/       one run's folder: each part's shards, its done marker partNNNNN.json, its
                  staged messages and their delivery journal, Beam's temporary files

A run: take the lease -> finish a commit that a stopped run left half done -> plan the parts
-> for each part, adopt it from a stopped run's folder, or run it, check it, mark it done and
deliver its messages -> check the manifest once more -> commit -> remove the run folders ->
release the lease. A run that fails removes its own folder unless it holds done parts, which
the next run of the prefix adopts; a run that is killed leaves its folder and its lease for
the next run to take over.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import posixpath
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from snapshot import errors, storage
from snapshot.errors import SnapshotError
from snapshot.jobs import ManifestLine
from snapshot.localfs import LocalRoot
from snapshot.objects import Retry
from snapshot.parts import Part
from snapshot.results import is_shard

log = logging.getLogger(__name__)

LEASE, COMMIT = "lease", "commit.json"
HEARTBEAT_S = 20  # a gs:// lease is renewed this often ...
STALE_S = 120  # ... and taken over when it has not been for this long
COMMIT_WAIT_S = 60  # how long a reader waits for a commit under way
DEFAULT_LINES = 5_000  # per part of a local run: a worker then peaks near 450 MB (docs/benchmarks.md#load)


class Held(Exception):
    """Another run holds the prefix: the message names it."""


class LeaseLost(Exception):
    """The lease was taken over while this run went on (a gs:// heartbeat that failed)."""


class Committing(Exception):
    """A commit of the prefix is under way, or was left half done by a run that was stopped."""


# -- where things are ---------------------------------------------------------------------------


def control(prefix: str) -> str:
    """The control folder of a results prefix."""
    return f"{prefix}.runs"


def absolute(prefix: str) -> str:
    """A local prefix as an absolute path: what a commit record holds must not depend on the
    folder the command was started in."""
    return prefix if "://" in prefix else os.path.abspath(prefix)


RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")  # a folder of any other name is not a run's


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def remove_tree(folder: str) -> None:
    """Remove a folder and everything below it, local or gs://; nothing there is fine."""
    if "://" in folder:
        with contextlib.suppress(BeamIOError):
            FileSystems.delete([folder.rstrip("/") + "/"])
        return
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(folder.rstrip("/")))  # the control folder, once it is empty


def read_json(root, name: str) -> dict | None:
    """A small JSON file of a folder (a storage root), or None when it is not there. A gs://
    object is read in one request, so a replacement meanwhile cannot tear it."""
    if isinstance(root, LocalRoot):
        try:
            with root.open(name) as stream:
                return json.loads(stream.read())
        except SnapshotError as error:
            if error.code == errors.RESOURCE_NOT_FOUND:
                return None
            raise
    found = root.read_versioned(name)
    return None if found is None else json.loads(found.data)


def write_json(root, name: str, value: dict) -> None:
    """Replace a small JSON file whole: a reader sees the old one or the new one."""
    root.write(name, json.dumps(value, sort_keys=True).encode())


def shards_of(prefix: str) -> list[str]:
    """The shards PREFIX-SSSSS-of-NNNNN.avro that exist, sorted (not those of a longer prefix)."""
    name = posixpath.basename(prefix)
    try:
        matched = FileSystems.match([f"{prefix}-*-of-*.avro"])[0].metadata_list
    except BeamIOError:
        return []
    return sorted(m.path for m in matched if is_shard(posixpath.basename(m.path), name))


# -- the lease ----------------------------------------------------------------------------------


def _holder(run_id: str) -> dict:
    now = time.time()
    return {"run": run_id, "host": socket.gethostname(), "pid": os.getpid(), "started": now, "heartbeat": now}


def describe(holder: dict | None) -> str:
    if not holder:
        return "a run that is starting"
    since = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(holder.get("started", 0)))
    return f"run {holder.get('run')} (pid {holder.get('pid')} on {holder.get('host')}, since {since})"


def _pid_gone(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


def stale(holder: dict, now: float) -> bool:
    """A lease whose holder is gone: its pid is not alive on this host, or it has not been
    renewed for STALE_S."""
    return _pid_gone(holder) or now - float(holder.get("heartbeat", 0)) > STALE_S


class Lease:
    """The right to change one results prefix, held for as long as a run lasts.

    Locally the lease file is locked with flock, which the kernel releases when the process
    dies; on gs:// it is an object created only if absent, renewed by a heartbeat, and taken
    over once stale. `taken_over` names the earlier holder whose lease this one replaced."""

    taken_over: dict | None = None

    @staticmethod
    def take(prefix: str, run_id: str) -> Lease:
        """The lease of `prefix`, or Held."""
        folder = control(prefix)
        return _GcsLease(folder, run_id) if folder.startswith("gs://") else _LocalLease(folder, run_id)

    def is_lost(self) -> bool:
        """Another run has taken the prefix over (only a gs:// lease can be)."""
        return False

    def check(self) -> None:
        """LeaseLost when another run has taken the prefix over."""
        if self.is_lost():
            raise LeaseLost("another run took the results prefix over: this run stops without committing")

    def release(self) -> None:
        raise NotImplementedError


class _LocalLease(Lease):
    def __init__(self, folder: str, run_id: str):
        self.path = os.path.join(folder, LEASE)
        for _ in range(10):
            os.makedirs(folder, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            except FileNotFoundError:  # the control folder was removed meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_fd(fd)
                os.close(fd)
                raise Held(f"{posixpath.dirname(self.path)} is held by {describe(holder)}") from None
            if not _same_file(fd, self.path):  # released and removed between our open and lock
                os.close(fd)
                continue
            self.fd = fd
            self.taken_over = _read_fd(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder(run_id)).encode(), 0)
            return
        raise Held(f"{folder}: the lease kept changing hands")

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while it is still locked: the next run makes a new one
        os.close(self.fd)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(self.path))


def _read_fd(fd: int) -> dict | None:
    try:
        value = json.loads(os.pread(fd, 1 << 16, 0) or b"null")
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


class _GcsLease(Lease):
    def __init__(self, folder: str, run_id: str):
        from snapshot import gcs  # google-cloud-storage is imported only where a gs:// prefix is used

        self.root = gcs.GcsRoot(folder, None, Retry())
        self.holder = _holder(run_id)
        self.lost, self.lock = threading.Event(), threading.Lock()
        self.generation = self._acquire(folder)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self.thread.start()

    def _acquire(self, folder: str) -> int:
        body = json.dumps(self.holder).encode()
        for _ in range(10):
            generation = self.root.write_if(LEASE, body, 0)
            if generation:
                return generation
            found = self.root.read_versioned(LEASE)
            if found is None:
                continue  # released meanwhile
            holder = _parse(found.data)
            if not stale(holder or {}, time.time()):
                raise Held(f"{folder} is held by {describe(holder)}")
            generation = self.root.write_if(LEASE, body, found.generation)
            if generation:
                self.taken_over = holder
                return generation
        raise Held(f"{folder}: the lease kept changing hands")

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with self.lock:
                self.holder["heartbeat"] = time.time()
                try:
                    body = json.dumps(self.holder).encode()
                    generation = self.root.write_if(LEASE, body, self.generation) or self._ours()
                except Exception:  # noqa: BLE001 - a missed beat is tried again; STALE_S allows several
                    log.warning("renewing the lease failed; trying again in %d s", HEARTBEAT_S)
                    continue
                if generation is None:
                    self.lost.set()
                    return
                self.generation = generation

    def _ours(self) -> int | None:
        """The live generation of the lease if it is still this run's (a write that was retried
        may have gone through the first time), else None."""
        found = self.root.read_versioned(LEASE)
        return found.generation if found is not None and _parse(found.data) == self.holder else None

    def is_lost(self) -> bool:
        """Asked of the object itself, not only of the heartbeat: a run that was stopped (SIGSTOP)
        for longer than STALE_S learns at once that it was taken over."""
        with self.lock:
            if not self.lost.is_set() and self._ours() != self.generation:
                self.lost.set()
        return self.lost.is_set()

    def release(self) -> None:
        self.stop.set()
        self.thread.join()
        with contextlib.suppress(Exception):
            self.root.delete_if(LEASE, self.generation)
        self.root.close()


def _parse(data: bytes) -> dict | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# -- the commit ---------------------------------------------------------------------------------


def _record(prefix: str) -> dict | None:
    root = storage.connect(control(prefix), None, Retry())
    try:
        return read_json(root, COMMIT)
    finally:
        root.close()


def committed_files(prefix: str) -> list[str]:
    """The result files of a prefix: those its commit record names, or, with none (results
    written by Beam directly: a test pipeline, a --no_wait job, an earlier version), the
    shards that exist. Committing while a commit is under way."""
    record = _record(prefix)
    if record is None:
        return shards_of(prefix)
    if record.get("state") != "committed":
        if not settle(prefix):
            raise Committing(f"the results of {prefix} are being committed by run {record.get('run')}")
        return committed_files(prefix)
    return [_join(posixpath.dirname(prefix) or ".", name) for name in record["shards"]]


def settle(prefix: str) -> bool:
    """Finish a commit that a stopped run left half done, if no run holds the prefix (a reader
    may: the new results are all there); whether it is finished."""
    try:
        lease = Lease.take(prefix, new_run_id())
    except (Held, OSError, SnapshotError):
        return False
    try:
        finished = finish_commit(prefix)
        if finished:
            remove_tree(_join(control(prefix), finished))  # as the run itself would have
        return True
    except (OSError, SnapshotError, BeamIOError):
        return False
    finally:
        lease.release()


def read_committed(prefix: str, read: Callable[[list[str]], list]) -> list:
    """`read(files)` of one committed set of results: when a commit starts meanwhile, read again
    once it is done (the record changes before any file does), for up to COMMIT_WAIT_S."""
    deadline = time.monotonic() + COMMIT_WAIT_S
    while True:
        before = _record(prefix)
        try:
            found = read(committed_files(prefix))
        except Exception:
            after = _record(prefix)
            under_way = after != before or (after or {}).get("state") == "committing"
            if not under_way or time.monotonic() > deadline:
                raise  # not a commit under way (shards that are gone, say), or one that never ends
        else:
            if _record(prefix) == before:
                return found
        time.sleep(0.2)


def commit(prefix: str, run_id: str, shards: list[str]) -> None:
    """Make `shards` (in order) the results of `prefix`, as PREFIX-SSSSS-of-NNNNN.avro.

    The record says 'committing' first, with every step to take; then the earlier results go,
    then the new ones are placed (the run folders keep theirs until they are removed, so a
    run that takes over after a stop finds its parts done), and the record says 'committed'.
    A reader that follows the record waits meanwhile; one that globs sees the earlier shards
    disappear, then the new ones appear: shards of one run at a time. A run stopped half way
    leaves the record for the next run of the prefix, which finishes the commit first
    (finish_commit)."""
    prefix, shards = absolute(prefix), [absolute(path) for path in shards]
    folder, name = posixpath.split(prefix)
    names = [f"{name}-{number:05d}-of-{len(shards):05d}.avro" for number in range(len(shards))]
    earlier = committed_files(prefix)
    targets = [_join(folder or ".", n) for n in names]
    record = {
        "state": "committing",
        "run": run_id,
        "shards": names,
        "remove": earlier,
        "moves": [[source, target] for source, target in zip(shards, targets, strict=True)],
    }
    root = storage.connect(control(prefix), None, Retry())
    try:
        write_json(root, COMMIT, record)
        _finish(root, record)
    finally:
        root.close()


def finish_commit(prefix: str) -> str | None:
    """Finish a commit that a stopped run left half done; the id of that run, or None."""
    root = storage.connect(control(prefix), None, Retry())
    try:
        record = read_json(root, COMMIT)
        if record is None or record.get("state") == "committed":
            return None
        _finish(root, record)
        return str(record.get("run"))
    finally:
        root.close()


def _finish(root, record: dict) -> None:
    gone = [path for path in record["remove"] if FileSystems.exists(path)]
    if gone:
        FileSystems.delete(gone)
    for source, target in record["moves"]:
        if FileSystems.exists(source):  # gone once the run folders are removed: then the commit was done
            _place(source, target)
    write_json(root, COMMIT, {"state": "committed", "run": record["run"], "shards": record["shards"]})


def _place(source: str, target: str) -> None:
    """Make `target` a copy of `source`, which stays: a hard link locally (the run folder is
    on the same disk), a copy on gs://. Whole or not at all, so it may be done again."""
    if "://" in source:
        FileSystems.copy([source], [target])
        return
    temporary = f"{target}.{secrets.token_hex(4)}.tmp"
    os.link(source, temporary)
    os.replace(temporary, target)


def hand_over(prefix: str) -> None:
    """Before a --no_wait job, which writes PREFIX-*.avro itself, outside this protocol:
    remove the prefix's results and then its commit record (under the lease), so that
    readers find the job's shards, and only those."""
    lease = Lease.take(prefix, new_run_id())
    try:
        earlier = committed_files(prefix)
        if earlier:
            FileSystems.delete(earlier)
        with contextlib.suppress(BeamIOError, FileNotFoundError):
            FileSystems.delete([_join(control(prefix), COMMIT)])
    finally:
        lease.release()


# -- parts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedPart:
    """One pipeline's share of the manifest: its lines as (Source, job id), in order."""

    index: int
    part: Part | None  # None: every line (a run of one part)
    lines: tuple[tuple[str, str], ...]
    settings: str = ""  # what else makes its results: where the buckets are, the targets, the limits

    @property
    def name(self) -> str:
        return f"part{self.index:05d}"

    @property
    def digest(self) -> str:
        """What a done part of a stopped run must match to be adopted: the same requests at
        the same places, run with the same settings."""
        text = self.settings + "\n" + "".join(f"{source}\t{job_id}\n" for source, job_id in self.lines)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def requests(lines: list[ManifestLine]) -> list[tuple[str, str]]:
    """(Source, job id) of each line: what its result must carry."""
    return [(f"{line.source}:{line.number}", line.job_id) for line in lines]


def plan(lines: list[ManifestLine], size: int, settings: str = "") -> list[PlannedPart]:
    """The parts of a manifest whose lines are `lines`: at most `size` lines each, in order;
    one part of everything when it has no more (or `size` is 0)."""
    pairs = requests(lines)
    if size <= 0 or len(pairs) <= size:
        return [PlannedPart(0, None, tuple(pairs), settings)]
    planned = []
    for index, start in enumerate(range(0, len(pairs), size)):
        chunk = lines[start : start + size]
        ranges: dict[str, tuple[int, int]] = {}
        for line in chunk:
            ranges[line.source] = (ranges.get(line.source, (line.number, 0))[0], line.number)
        planned.append(PlannedPart(index, Part(ranges), tuple(pairs[start : start + size]), settings))
    return planned


@dataclass(frozen=True)
class DonePart:
    """A part that a run finished: where its shards are."""

    folder: str
    index: int
    shards: tuple[str, ...]


def part_shards(folder: str, name: str) -> list[str]:
    return shards_of(_join(folder, name))


def mark_done(folder: str, planned: PlannedPart, shards: list[str]) -> None:
    """The part's commit: from now on its shards are final and the next run adopts them."""
    root = storage.connect(folder, None, Retry())
    try:
        names = [posixpath.basename(path) for path in shards]
        write_json(root, f"{planned.name}.json", {"digest": planned.digest, "shards": names})
    finally:
        root.close()


def done_parts(run_folders: Iterable[str]) -> dict[str, DonePart]:
    """The done parts of the given run folders, by digest, when every shard they name is
    there."""
    found: dict[str, DonePart] = {}
    for folder in run_folders:
        root = storage.connect(folder, None, Retry())
        try:
            for marker in _match(_join(folder, "part*.json")):
                name = posixpath.basename(marker)
                if not name[4:9].isdigit() or name != f"part{name[4:9]}.json":
                    continue
                value = read_json(root, name) or {}
                shards = tuple(_join(folder, shard) for shard in value.get("shards", []))
                if shards and all(FileSystems.exists(path) for path in shards):
                    found[value["digest"]] = DonePart(folder, int(name[4:9]), shards)
        finally:
            root.close()
    return found


def run_folders(prefix: str) -> list[str]:
    """The run folders in the prefix's control folder (those of stopped runs, when the lease
    is ours), even empty ones."""
    folder = control(prefix)
    if "://" not in folder:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            names = {e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)}
            return sorted(_join(folder, name) for name in names if RUN_ID.fullmatch(name))
        return []
    below = (path[len(folder) + 1 :] for path in _match(f"{folder}/**"))
    names = {rest.split("/", 1)[0] for rest in below if "/" in rest}
    return sorted(_join(folder, name) for name in names if RUN_ID.fullmatch(name))


def _match(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except BeamIOError:
        return []


# -- one run ------------------------------------------------------------------------------------


@dataclass
class Run:
    """A run's id, folder and lease on `prefix`, from `start` to `end`.

    `adopted` maps the index of each planned part to the done part of a stopped run that
    stands for it; `stopped` are the folders of stopped runs, removed after the commit."""

    prefix: str
    run_id: str = field(default_factory=new_run_id)
    lease: Lease | None = None
    stopped: list[str] = field(default_factory=list)
    adopted: dict[int, DonePart] = field(default_factory=dict)
    shards: dict[int, list[str]] = field(default_factory=dict)  # each part's, once done or adopted
    notes: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.prefix = absolute(self.prefix)

    @property
    def folder(self) -> str:
        return _join(control(self.prefix), self.run_id)

    def start(self, parts: list[PlannedPart]) -> None:
        """Take the lease (Held if another run has it), finish a commit left half done, and
        adopt the done parts of stopped runs that match `parts`."""
        self.lease = Lease.take(self.prefix, self.run_id)
        if self.lease.taken_over:
            self.notes.append(
                f"took over the lease of {describe(self.lease.taken_over)}, which ended without releasing it"
            )
        finished = finish_commit(self.prefix)
        if finished:
            self.notes.append(f"finished the commit that run {finished} left half done")
        self.stopped = run_folders(self.prefix)
        done = done_parts(self.stopped)
        self.adopted = {p.index: done[p.digest] for p in parts if p.digest in done}
        if self.adopted:
            carried = sum(len(p.lines) for p in parts if p.index in self.adopted)
            stopped = ", ".join(sorted({posixpath.basename(d.folder) for d in self.adopted.values()}))
            total = sum(len(p.lines) for p in parts)
            self.notes.append(f"went on from the stopped run {stopped}: {carried} of {total} lines were done")

    def part_prefix(self, planned: PlannedPart) -> str:
        return _join(self.folder, planned.name)

    def staging(self, planned: PlannedPart) -> str:
        """Where the part's messages to file targets wait for delivery."""
        return _join(self.folder, f"messages/{planned.name}")

    def check(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def commit(self, shards: list[str]) -> None:
        self.check()
        commit(self.prefix, self.run_id, shards)
        for folder in [self.folder, *self.stopped]:
            remove_tree(folder)

    def end(self, failed: bool) -> None:
        """After a failure, remove this run's folder unless it holds done parts; then release
        the lease. Nothing here raises: the disk may be the full one."""
        try:
            lost = self.lease is not None and self.lease.is_lost()  # the folder is the new holder's now
            if failed and not lost and not _match(_join(self.folder, "part*.json")):
                remove_tree(self.folder)
        except Exception:
            log.warning("removing %s failed", self.folder, exc_info=True)
        if self.lease is not None:
            with contextlib.suppress(Exception):
                self.lease.release()
            self.lease = None
