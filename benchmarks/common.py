"""Shared pieces of the benchmarks: the tools to compare with, process trees, peak memory, timing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time


def pipeline_command(manifest: str, results: str, bucket_root: str, *flags: str) -> list[str]:
    """The plain command on a manifest, as a user types it."""
    paths = ["--manifest", manifest, "--results", results, "--bucket_root", bucket_root]
    return [sys.executable, "-m", "pipeline", *paths, *flags]


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
    """Run a command (with user_env() unless `env` is given); (wall seconds, {pid: (peak RSS
    MB, command line)} of it and all below it, result)."""
    kwargs.setdefault("env", user_env())
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


def user_env() -> dict[str, str]:
    """The environment a user's command runs in: Python caches the project's compiled modules
    (a PYTHONDONTWRITEBYTECODE here would make every run compile them again)."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def require_ffmpeg() -> None:
    """Debian's ffmpeg command line, installed when it is missing and this is root on Debian."""
    require_debian_tool("ffmpeg", "ffmpeg")


def require_debian_tool(command: str, package: str) -> None:
    """`command`, from Debian's `package`: installed when it is missing and apt-get can be run
    (as root, or with sudo); otherwise the benchmark stops and says why."""
    if shutil.which(command):
        return
    if not shutil.which("apt-get"):
        sys.exit(f"the benchmark compares with {command}: there is no apt-get here; install {package} yourself")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        sys.exit(f"the benchmark compares with {command}: installing {package} needs root or sudo, and neither is here")
    print(f"installing Debian's {package} for the comparison ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", package], check=False, stdout=subprocess.DEVNULL, env=env)
    if not shutil.which(command):
        sys.exit(f"the benchmark compares with {command}: installing {package} failed (apt-get install {package})")
