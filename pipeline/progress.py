"""A live progress line for local runs: jobs finished of the total, images written, failures
so far, the rate and the time left.

The time left comes from the mean rate since the start (jobs done over the time elapsed), not
from the last few updates: jobs finish in bursts, a bundle at a time, and a rate taken just
after a pause says minutes when a second is left. Before the first job is done there is no
rate, and no time left is shown.

Each finished job sends one datagram to a Unix socket of the launching command
(`transforms.results.tell`); worker threads and local worker processes alike reach it. On a
terminal the line is tqdm's; without one (CI, a pipe) a plain line every 10 s. Runners on
other machines report Beam counters instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

from tqdm import tqdm

PLAIN_EVERY_S = 10


class Progress:
    """The receiving end, in the command: `path` is where workers send; `close()` ends the line."""

    def __init__(self, total: int, stream=None, plain_every_s: float = PLAIN_EVERY_S):
        self.total, self.stream = total, stream or sys.stderr
        self.done = self.failed = self.images = 0
        self.folder = tempfile.mkdtemp(prefix="snapshot-progress-")
        self.path = os.path.join(self.folder, "socket")
        self.receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.receiver.bind(self.path)
        self.receiver.settimeout(0.2)
        self.started = time.monotonic()
        width = shutil.get_terminal_size((100, 20)).columns  # a terminal that says 0 columns gets 100
        self.bar = (  # smoothing=0: tqdm's time left from the mean rate, as `line` has it
            tqdm(total=total, unit="job", file=self.stream, ncols=width, smoothing=0) if self.stream.isatty() else None
        )
        self.plain_every_s, self.plain_lines = plain_every_s, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._receive, name="progress", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.receiver.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self.folder)
        if self.bar is not None:
            self.bar.close()
        elif self.plain_lines:
            self._plain()  # the last figures, after the ones printed every PLAIN_EVERY_S

    def line(self) -> str:
        return line(self.done, self.total, self.images, self.failed, time.monotonic() - self.started)

    def _receive(self) -> None:
        last_plain = time.monotonic()
        while not self.stop.is_set():
            try:
                failed, images = map(int, self.receiver.recv(64).split())
            except (OSError, ValueError):
                pass
            else:
                self.done, self.failed, self.images = self.done + 1, self.failed + failed, self.images + images
                if self.bar is not None:
                    self.bar.set_postfix_str(f"{self.images} images, {self.failed} failed", refresh=False)
                    self.bar.update(1)
            if self.bar is None and time.monotonic() - last_plain >= self.plain_every_s:
                self._plain()
                last_plain = time.monotonic()

    def _plain(self) -> None:
        self.plain_lines += 1
        print(f"progress: {self.line()}", file=self.stream, flush=True)


def line(done: int, total: int, images: int, failed: int, elapsed_s: float) -> str:
    """'620/1000 jobs, 1854 images, 48 failed, 86.1 jobs/s, 4 s left'; no rate before the
    first job is done, and no time left once every job is."""
    text = f"{done}/{total} jobs, {images} images, {failed} failed"
    if done <= 0 or elapsed_s <= 0:
        return text
    rate = done / elapsed_s
    text += f", {rate:.1f} jobs/s"
    return text if done >= total else f"{text}, {duration((total - done) / rate)} left"


def duration(seconds: float) -> str:
    """'4 s', '3 min 50 s', '2 h 05 min'."""
    whole = max(1, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
