"""Running a piece of work in a child process that can be killed: time limits and crashes.

A decoder that hangs or crashes (segfault, abort, out of memory) takes only its child process
with it; the caller gets a SnapshotError and goes on.
"""
from __future__ import annotations

import multiprocessing
import signal
from typing import Any, Callable

from snapshot import errors
from snapshot.errors import SnapshotError

SYNC_TIMEOUT_S = 5.0      # a synchronous job (no Interval, Num or TimeArray), as the API
ASYNC_TIMEOUT_S = 600.0   # any other job


def _child(function: Callable, args: tuple, connection) -> None:
    try:
        connection.send((True, function(*args)))
    except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
        connection.send((False, error))
    finally:
        connection.close()


def run_isolated(function: Callable, args: tuple, seconds: float) -> Any:
    """`function(*args)` in a forked child; killed past `seconds` (SnapshotTimeOut).

    A child that dies without an answer raises InternalError, naming the signal.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(function, args, sender), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            process.kill()
            raise SnapshotError(errors.SNAPSHOT_TIMEOUT, f"the job ran past its time limit of {seconds:g} s")
        try:
            ok, value = receiver.recv()
        except EOFError:
            process.join()
            raise SnapshotError(errors.INTERNAL_ERROR, f"the decoding process died ({_death(process.exitcode)})") \
                from None
    finally:
        process.join()
        receiver.close()
    if not ok:
        raise value
    return value


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            pass
    return f"exit code {exitcode}"
