"""The run's log: every record, tracebacks included, goes to a log file; stderr gets one
line per message of this project, and none of Beam's walls of text. Beam's workers also print
tracebacks straight to stderr, and worker processes write to the file descriptor they
inherit: while the run lasts, file descriptor 2 is the log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import traceback

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname} {record.name}: {record.getMessage().splitlines()[0][:300]}"


class _Quiet:
    """A text stream that drops what it cannot write (the disk may be the full one)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()


class RunLog:
    """Installs the handlers on the root logger; `path` is the log file."""

    def __init__(self):
        fd, self.path = tempfile.mkstemp(prefix="snapshot-run-", suffix=".log")
        os.close(fd)
        to_file = logging.FileHandler(self.path)
        to_file.setFormatter(logging.Formatter(FORMAT))
        # where the one-line messages (and the progress line) go, also while stderr is captured
        self.terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
        to_stderr = logging.StreamHandler(self.terminal)
        to_stderr.setFormatter(_OneLine())
        to_stderr.addFilter(lambda record: not record.name.startswith("apache_beam"))
        root = logging.getLogger()
        root.setLevel(logging.WARNING)
        for handler in (to_file, to_stderr):
            handler.setLevel(logging.WARNING)
            root.addHandler(handler)
        self.handlers = (to_file, to_stderr)

    @contextlib.contextmanager
    def capturing_stderr(self):
        sink = open(self.path, "a")  # noqa: SIM115 - closed below, where a full disk may not raise
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(_Quiet(sink)):
                yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            with contextlib.suppress(OSError):
                sink.close()

    def keep(self, error: BaseException) -> str:
        """Add the traceback of `error`, close, and keep the log: where the details are. It
        never raises: with the disk full, it says the details could not be written."""
        try:
            with open(self.path, "a") as sink:
                sink.write("".join(traceback.format_exception(error)))
        except OSError as failed:
            self.close(keep=False)
            return f"the details could not be logged ({failed.strerror})"
        return f"details in {self.close(keep=True)}"

    def close(self, keep: bool) -> str:
        """Remove the handlers, and the log file unless `keep`; its path."""
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            with contextlib.suppress(OSError, ValueError):
                handler.close()
        if not keep:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        return self.path
