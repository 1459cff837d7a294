"""Machine-wide slots: at most N decoding processes at work at once on one machine, across all
the worker processes of every runner (docs/operations.md#limits).

A slot is a lock file in a folder of the machine's temporary directory, held with `flock`
while one call runs in a decoding process. A caller that finds every slot held waits for one:
it never fails for want of a slot. The kernel releases the lock of a holder that dies, however
it dies, so a killed worker never keeps a slot. A slot's file names its last holder: its pid
and its parent's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import time
from collections.abc import Iterator

POLL_S = 0.02  # how often a caller that waits tries the slots again (with jitter)


FOLDER_VARIABLE = "SNAPSHOT_DECODER_SLOTS"  # names the folder instead, e.g. one on a volume that containers share


def folder() -> str:
    """Where the slots are: the same for every process of the machine's user."""
    return os.environ.get(FOLDER_VARIABLE) or os.path.join(tempfile.gettempdir(), f"snapshot-decoders-{os.getuid()}")


def count(max_decoders: int) -> int:
    """The bound: `max_decoders`, or the machine's cores for 0."""
    return max_decoders if max_decoders > 0 else os.cpu_count() or 1


@contextlib.contextmanager
def held(max_decoders: int, where: str | None = None) -> Iterator[int]:
    """Hold one of `count(max_decoders)` slots for the block, waiting until one is free; its
    number."""
    where = where or folder()
    os.makedirs(where, exist_ok=True)
    slots = count(max_decoders)
    start = random.randrange(slots)  # callers spread over the slots instead of queueing on the first
    while True:
        for n in (*range(start, slots), *range(start)):
            descriptor = os.open(os.path.join(where, f"slot-{n}"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            try:
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.getpid()} {os.getppid()}\n".encode(), 0)
                yield n
            finally:
                os.close(descriptor)  # closing the only descriptor releases the lock
            return
        time.sleep(POLL_S * (0.5 + random.random()))


def busy(max_decoders: int, where: str | None = None) -> list[tuple[int, int]]:
    """The slots held now and the pid of each holder, as /proc/locks shows them (Linux): for
    tests and monitoring; it takes none."""
    where = where or folder()
    inodes = {}
    for n in range(count(max_decoders)):
        with contextlib.suppress(FileNotFoundError):
            inodes[os.stat(os.path.join(where, f"slot-{n}")).st_ino] = n
    found = []
    with open("/proc/locks", encoding="ascii") as locks:
        for line in locks:
            fields = line.split()
            if "FLOCK" in fields and "->" not in fields:
                inode = int(fields[-3].rsplit(":", 1)[1])
                if inode in inodes:
                    found.append((inodes[inode], int(fields[4])))
    return sorted(found)


def last_holder(n: int, where: str | None = None) -> tuple[int, int] | None:
    """The pid of the last holder of slot `n`, and its parent's; None if it was never held."""
    try:
        with open(os.path.join(where or folder(), f"slot-{n}"), encoding="ascii") as stream:
            pid, parent = stream.read().split()
    except (FileNotFoundError, ValueError):
        return None
    return int(pid), int(parent)
