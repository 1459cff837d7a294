"""Calls in a child process that can be killed: time limits, memory caps and crashes.

A call that hangs or crashes (segfault, abort, out of memory) takes only its child process
with it; the caller gets a SnapshotError with a code and goes on. The child is persistent:
it serves call after call, and is replaced when it is killed or dies. This module knows
nothing of what it runs: its callers name the modules a child imports before it is ready.

Why not Beam's own `with_exception_handling(use_subprocess=True, timeout=...)`:
- it starts a process per element, and a decoding process costs about a second to import
  PyAV, Pillow and NumPy: here one process serves a DoFn's calls from `setup` to `teardown`;
- it has no address-space cap: here `memory_mb` sets RLIMIT_AS in the child, so a decoder
  that asks for too much fails alone instead of waking the machine's OOM killer;
- it maps every death to one dead-letter output: here a decoder's crash signal (SIGSEGV,
  SIGABRT, ...) becomes `ResourceContentBad` for that input, a time limit `SnapshotTimeOut`,
  and anything else `InternalError`, and a generator's items stream back one by one, each
  within its own time limit.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from types import GeneratorType
from typing import Any, cast

from snapshot import errors, slots
from snapshot.errors import SnapshotError


class Kind(enum.Enum):
    """What a child's answer on the pipe is."""

    ITEM = "item"  # one item of a generator
    DONE = "done"  # the return value: the call is over
    FAILED = "failed"  # the exception the call raised
    LOG = "log"  # a log record on the way


START_TIMEOUT_S = 120  # a new decoding process imports PyAV, Pillow and NumPy before it is ready

# Signals that mean the decoder itself broke on the input, not the machine.
_DECODER_CRASHES = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE, signal.SIGILL}


ORPHAN_CHECK_S = 0.2  # how often a decoding process looks for its parent


def _serve(connection, memory_mb: int, parent: int, preload: tuple[str, ...]) -> None:
    _exit_when_orphaned(parent)
    _relay_logs(connection)
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for module in preload:  # imported before the first call's clock starts
        importlib.import_module(module)

    connection.send("ready")
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            value = function(*args)
            if isinstance(value, GeneratorType):  # its items go back one by one, as they come
                for item in value:
                    connection.send((Kind.ITEM, item))
                value = None
            answer = (Kind.DONE, value)
        except BaseException as error:  # noqa: BLE001 - everything goes back to the parent
            answer = (Kind.FAILED, error)
        connection.send(answer)


class _Relay(logging.Handler):
    """Sends this process's log records to the parent, which logs them as its own: they reach
    the worker's log on every runner, tracebacks included."""

    def __init__(self, connection):
        super().__init__(logging.INFO)
        self.connection = connection

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.connection.send(
                (
                    Kind.LOG,
                    {
                        "name": record.name,
                        "levelno": record.levelno,
                        "levelname": record.levelname,
                        "msg": text,
                        "pathname": record.pathname,
                        "lineno": record.lineno,
                        "funcName": record.funcName,
                        "created": record.created,
                        "processName": "decoding process",
                    },
                )
            )
        except Exception:  # noqa: BLE001 - a log line must never break a call
            pass


def _relay_logs(connection) -> None:
    root = logging.getLogger()
    root.handlers[:] = [_Relay(connection)]
    root.setLevel(logging.INFO)


def _exit_when_orphaned(parent: int) -> None:
    """Exit as soon as the parent is gone (killed by the OOM killer, say), whatever this process
    is doing: a thread watches getppid(). (prctl's PR_SET_PDEATHSIG would fire when the parent's
    *thread* that started this process ends, and short-lived threads start these processes.)"""

    def watch():
        while os.getppid() == parent:
            time.sleep(ORPHAN_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


class Worker:
    """One child process that runs calls with a time limit.

    Args:
        start_method: how multiprocessing starts the child ("spawn" or "fork").
        memory_mb: the child's address-space cap in MiB; 0 for none.
        preload: modules the child imports before it is ready, so that no call pays for them.
    """

    def __init__(self, start_method: str = "spawn", memory_mb: int = 0, preload: tuple[str, ...] = ()):
        self.context = cast("ForkContext | SpawnContext", multiprocessing.get_context(start_method))
        self.memory_mb, self.preload = memory_mb, preload
        self.environment = dict(os.environ)  # what the child inherits
        self.process: BaseProcess | None = None
        self.connection: Connection | None = None

    def call(self, function: Callable, args: tuple, seconds: float) -> Any:
        """`function(*args)` in the child; SnapshotTimeOut past `seconds`, a coded error if it dies."""
        items = self.stream(function, args, lambda: seconds)
        for _ in items:
            raise TypeError("call() runs functions, not generators: use stream()")
        return items.value

    def stream(self, function: Callable, args: tuple, seconds: Callable[[], float]) -> _Stream:
        """The items of generator `function(*args)`, run in the child, as they come: the child
        is killed, and SnapshotTimeOut raised, when the next item takes longer than
        `seconds()` (asked afresh for each item); a coded error if it dies."""
        connection = self.connection
        if connection is None or self.process is None or not self.process.is_alive():
            connection = self.start()
        connection.send((function, args))
        return _Stream(self, connection, seconds)

    def close(self) -> None:
        """Kill the child (if any) and reap it."""
        process, connection, self.process, self.connection = self.process, self.connection, None, None
        if process is not None:
            with contextlib.suppress(Exception):  # a child still starting in another thread
                process.kill()
                process.join()
        if connection is not None:
            connection.close()

    def start(self) -> Connection:
        """Start the child and wait until it is ready; the parent's end of its pipe."""
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_serve, args=(child, self.memory_mb, os.getpid(), self.preload), daemon=True
        )
        self.process, self.connection = process, parent
        process.start()
        child.close()
        try:
            ready = parent.poll(START_TIMEOUT_S) and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            process.join(1)
            cause = _describe(process.exitcode) if process.exitcode is not None else "no answer"
            self.close()
            raise SnapshotError(
                errors.INTERNAL_ERROR, f"the decoding process did not start ({cause}; is --decoder_memory_mb too low?)"
            )
        return parent

    def died(self) -> SnapshotError:
        """The coded error of a child that died mid-call, once it is reaped."""
        process, connection, self.process, self.connection = self.process, self.connection, None, None
        code = None
        if process is not None:
            process.join()
            code = process.exitcode
        if connection is not None:
            connection.close()
        if code is not None and code < 0 and -code in _DECODER_CRASHES:
            return SnapshotError(
                errors.RESOURCE_CONTENT_BAD, f"the decoder crashed on this input ({signal.Signals(-code).name})"
            )
        return SnapshotError(errors.INTERNAL_ERROR, f"the decoding process died ({_describe(code)})")


class _Stream:
    """The answers of one call, item by item; `value` is the return value once done."""

    def __init__(self, worker: Worker, connection: Connection, seconds: Callable[[], float]):
        self.worker, self.connection, self.seconds = worker, connection, seconds
        self.value: Any = None

    def __iter__(self) -> Iterator:
        finished = False
        try:
            while True:
                kind, value = self._next()
                if kind == Kind.ITEM:
                    yield value
                    continue
                finished = True
                if kind == Kind.FAILED:
                    raise value
                self.value = value
                return
        finally:
            if not finished:
                self.worker.close()  # abandoned mid-way or broken: the child's answers are no use

    def _next(self):
        """The child's next answer; its log records on the way are logged here."""
        worker, seconds = self.worker, self.seconds()
        deadline = time.monotonic() + seconds
        while True:
            if not self.connection.poll(max(0.0, deadline - time.monotonic())):
                worker.close()
                raise SnapshotError(errors.SNAPSHOT_TIMEOUT, f"the job ran past its time limit of {seconds:g} s")
            try:
                kind, value = self.connection.recv()
            except EOFError:
                raise worker.died() from None
            if kind != Kind.LOG:
                return kind, value
            record = logging.makeLogRecord(value)
            logging.getLogger(record.name).handle(record)


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            pass
    return f"exit code {exitcode}"


class Pool:
    """The child processes of one owner, such as a worker's DoFn, from its `setup` to its
    `teardown`: its threads share them (a call takes an idle one, or starts one, and gives it
    back), so there are only as many as calls that ran at the same time, and `close` ends them
    all. A process is started again when this process's environment changed. Each call holds
    one of the machine's slots (snapshot.slots) while it runs, waiting for one before its
    clock starts.

    Args:
        memory_mb: each child's address-space cap in MiB; 0 for none.
        preload: modules each child imports before it is ready.
        max_decoders: calls at work at once on this machine, in every process (0: its cores);
            None for no bound.
    """

    def __init__(self, memory_mb: int = 0, preload: tuple[str, ...] = (), max_decoders: int | None = None):
        self.memory_mb, self.preload, self.max_decoders = memory_mb, preload, max_decoders
        self._users = 0  # of a pool from `shared`
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._lock = threading.Lock()

    def run(self, function: Callable, args: tuple, seconds: float) -> Any:
        """`function(*args)` in one of the processes; see `Worker.call`."""
        with self._slot():
            worker = self._take()
            try:
                return worker.call(function, args, seconds)
            finally:
                self._give_back(worker)

    def stream(self, function: Callable, args: tuple, seconds: Callable[[], float]) -> Iterator:
        """The items of generator `function(*args)` from one of the processes; see `Worker.stream`."""
        with self._slot():
            worker = self._take()
            try:
                yield from worker.stream(function, args, seconds)
            finally:
                self._give_back(worker)

    def _slot(self) -> contextlib.AbstractContextManager:
        """One of the machine's slots, waited for; nothing without a bound."""
        return contextlib.nullcontext() if self.max_decoders is None else slots.held(self.max_decoders)

    def prestart(self, count: int) -> None:
        """Start processes in the background until the pool holds `count`: their start
        overlaps what the owner does meanwhile."""

        def start(worker: Worker):
            try:
                worker.start()
            except Exception:  # noqa: BLE001 - closed meanwhile, or failed: a call starts one when it needs it
                worker.close()
                return
            self._give_back(worker)

        with self._lock:
            missing = count - len(self._all)
        for _ in range(missing):
            threading.Thread(target=start, args=(self._new(),), daemon=True).start()

    def release(self) -> None:
        """A user of a pool from `shared` is done with it; the last one closes it."""
        with _SHARED_LOCK:
            self._users -= 1
            if self._users > 0:
                return
            _SHARED.pop((self.memory_mb, self.preload, self.max_decoders), None)
        self.close()

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _take(self) -> Worker:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is not None and worker.environment != os.environ:
            worker.close()
            worker = None
        return worker or self._new()

    def _new(self) -> Worker:
        worker = Worker("spawn", self.memory_mb, self.preload)
        with self._lock:
            self._all.append(worker)
        return worker

    def _give_back(self, worker: Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._idle.append(worker)


_SHARED: dict[tuple[int, tuple[str, ...], int | None], Pool] = {}
_SHARED_LOCK = threading.Lock()


def shared(memory_mb: int = 0, preload: tuple[str, ...] = (), max_decoders: int | None = None) -> Pool:
    """The pool of these settings that this process's users share, one more user counted:
    each calls `release` when done, and the last one closes it. Steps that run one after the
    other then reuse the same processes, and a process started early serves the first step."""
    with _SHARED_LOCK:
        key = (memory_mb, preload, max_decoders)
        pool = _SHARED.setdefault(key, Pool(*key))
        pool._users += 1  # noqa: SLF001 - the pool's own count, kept under the module's lock
    return pool
