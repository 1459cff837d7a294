"""Shared pieces of the benchmarks: the ffmpeg to compare with, process trees, peak memory, timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time


def descendants(root: int) -> list[int]:
    """All processes below `root`, from /proc."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(pid))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def run_measured(
    command: list[str], **kwargs
) -> tuple[float, dict[int, tuple[float, str]], subprocess.CompletedProcess]:
    """Run a command; (wall seconds, {pid: (peak RSS MB, command line)} of it and all below it, result)."""
    peaks: dict[int, tuple[float, str]] = {}
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in [process.pid, *descendants(process.pid)]:
                rss = rss_mb(pid)
                if rss > peaks.get(pid, (0, ""))[0]:
                    peaks[pid] = (rss, peaks.get(pid, (0, ""))[1] or command_line(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    return elapsed, peaks, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def require_ffmpeg() -> None:
    """Debian's ffmpeg command line, installed when it is missing and this is root on Debian."""
    if shutil.which("ffmpeg"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's ffmpeg for the comparison ...", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "ffmpeg"], check=True, stdout=subprocess.DEVNULL, env=env)
    if not shutil.which("ffmpeg"):
        sys.exit("the benchmark compares with the ffmpeg command line: install it (apt-get install ffmpeg)")
