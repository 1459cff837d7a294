"""A live progress line for local runs: jobs finished of the total, images written, failures
so far, the rate and the time left.

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
        self.bar = tqdm(total=total, unit="job", file=self.stream, ncols=width) if self.stream.isatty() else None
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
        seconds = time.monotonic() - self.started
        rate = self.done / seconds if seconds > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        return (
            f"{self.done}/{self.total} jobs, {self.images} images, {self.failed} failed, {rate:.1f} jobs/s, "
            f"{left:.0f} s left"
        )

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
